; bootstorm guest, "firmware" boot path: the guest IS the firmware (QEMU -bios).
; A 64 KiB image mapped at the top of 4 GiB; the CPU resets in real mode at F000:FFF0 with the
; CS base at 0xFFFF0000, so offset N of this file is executed at IP = N.
; It sets up a stack and segments, writes a one-byte marker to COM1 as soon as it runs, then the
; ready string, then halts with interrupts off (it never spins, so a ready instance costs no CPU).

bits 16
org 0x0000

%include "ready.inc"

start:
    ; low RAM exists on every machine type we use; the string lives in this image, addressed
    ; through CS
    guest_run 0x7000, cs lodsb

ready_msg:
    db READY_STRING, 0

    times 0xFFF0 - ($ - $$) db 0xF4   ; fill with hlt
reset_vector:                         ; offset 0xFFF0: where the CPU starts
    jmp near start
    times 0x10000 - ($ - $$) db 0xF4
