// Pasture's entry point into llama.cpp's quantizer (vendor/src/llama-quant.cpp, compiled
// beside it): llama_model_quantize with its default parameters but the file type and the
// thread count, so Python needs no copy of llama_model_quantize_params' layout.
#include "llama.h"

extern "C" int pasture_quantize(const char * input, const char * output, int ftype, int threads) {
    llama_model_quantize_params params = llama_model_quantize_default_params();
    params.ftype = (enum llama_ftype) ftype;
    params.nthread = threads;
    return (int) llama_model_quantize(input, output, &params);
}
