; bootstorm guest, "bios" boot path: a 512-byte boot sector loaded by SeaBIOS at 0000:7C00
; (the 2016 study's path). Same behaviour as firmware.asm: stack and segments, a one-byte marker
; on COM1, the ready string, then cli; hlt.

bits 16
org 0x7C00

%include "ready.inc"

start:
    guest_run 0x7C00, lodsb

ready_msg:
    db READY_STRING, 0

    times 510 - ($ - $$) db 0
    dw 0xAA55
