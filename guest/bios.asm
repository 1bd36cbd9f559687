; bootstorm guest, "bios" boot path: a 512-byte boot sector loaded by SeaBIOS at 0000:7C00
; (the 2016 study's path). Same behaviour as firmware.asm: stack and segments, a one-byte marker
; on COM1, the ready string, then cli; hlt.

bits 16
org 0x7C00

%define COM1 0x3F8
%include "ready.inc"

start:
    cli
    cld
    xor ax, ax
    mov ss, ax
    mov sp, 0x7C00
    mov ds, ax
    mov es, ax
    mov dx, COM1
    mov al, MARKER
    out dx, al
    mov si, ready_msg
.next:
    lodsb
    test al, al
    jz .halt
    out dx, al
    jmp .next
.halt:
    cli
    hlt
    jmp .halt

ready_msg:
    db READY_STRING, 0

    times 510 - ($ - $$) db 0
    dw 0xAA55
