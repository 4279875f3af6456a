/* An ELF note by which an executable tells pat's loader that it has
 * fixed-address builds: the same program linked non-PIE (ET_EXEC) at several
 * distinct addresses. Non-PIE code is faster than position-independent code
 * (Debian's CPython: 15-25%), but an ET_EXEC image occupies fixed addresses,
 * so one copy fits in an address space. With several builds, each at its own
 * addresses, several copies fit. When the host launches such a program into a
 * group, it maps the first build whose addresses are free in the group and
 * falls back to the program itself (position-independent) when none is.
 *
 *   owner "pat", type PAT_NOTE_FIXED_BUILDS,
 *   desc: a NUL-terminated directory, relative to the directory of the
 *         executable carrying the note (symlinks resolved), holding the builds.
 *
 * Every regular file in that directory is a candidate, tried in name order.
 * A build must be ET_EXEC and name the same ELF interpreter as the program.
 * C-compatible: the note is emitted from assembler (see python/launcher). */
#ifndef PAT_PROTO_ELF_NOTE_H
#define PAT_PROTO_ELF_NOTE_H

#define PAT_NOTE_OWNER "pat"
#define PAT_NOTE_FIXED_BUILDS 1

#endif
