/* ELF notes by which pat's own executables talk to pat's loader
 * (tracer/nonpic_build.cc). Both are in the "pat" owner's namespace and live in
 * an allocated SHT_NOTE section, so the linker puts them in a PT_NOTE segment,
 * where the loader reads them without section headers.
 *
 * PAT_NOTE_NONPIC_BUILD, carried by a position-independent program (pat-python):
 *   desc: a NUL-terminated path, relative to the directory of the executable
 *         carrying the note (symlinks resolved), of a non-PIC build of the same
 *         program: ET_EXEC, linked with `ld --emit-relocs` so that the loader
 *         can move it to any free place below 2 GiB (tracer/elf_relocations.h).
 *   Non-PIC code is faster (Debian's CPython: 15-25%), and a group runs every
 *   member it can on the non-PIC build, the rest on the program itself.
 *
 * PAT_NOTE_BUILD_INPUTS, carried by that non-PIC build:
 *   desc: NUL-terminated text, one fact per line, each line ending in '\n':
 *     "package NAME VERSION"  the Debian package the code came from (optional)
 *     "linked HEX PATH"       a file the build copied code from, and its SHA-256
 *                             when the build was linked (for the record)
 *     "check HEX PATH"        a file that must still have this SHA-256 for the
 *                             build to run (at least one)
 *   pat-python's build was linked from libpython3.11.a and checks
 *   libpython3.11.so, the installed interpreter core: Debian updates the two,
 *   and the standard library, together (their packages depend on each other
 *   at exactly the same version), and only the shared one is always there.
 *   A checked file that is gone proves nothing; one that changed means an
 *   update replaced the code the build carries a copy of, and the loader
 *   runs the program itself instead.
 *
 * C-compatible: the notes are emitted from assembler (see python/). */
#ifndef PAT_PROTO_ELF_NOTE_H
#define PAT_PROTO_ELF_NOTE_H

#define PAT_NOTE_OWNER "pat"
/* 1 named a directory of builds at fixed addresses (pat before the non-PIC
 * build could be moved); no longer read. */
#define PAT_NOTE_NONPIC_BUILD 2
#define PAT_NOTE_BUILD_INPUTS 3

#endif
