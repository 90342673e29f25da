// common.cl: definitions shared by every kernel file; Sources() puts it
// first in the program.
//
// No kernels. Tunables: none.
