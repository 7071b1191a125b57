// Compiles the header-only kernels once inside the Swift package so that the
// tests can call them directly; generated libraries include the same headers.
#include "rnnc_kernels.h"
#include "rnnc_safetensors.h"
