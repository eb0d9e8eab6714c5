// What the native timing tools (bench_phi3, bench_vision, bench_generate) share: a clock,
// the median of repeated runs, the --gpu argument and text made safe inside a JSON string.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "healthgpt.h"

namespace tool {

inline double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
inline double now_ms() { return 1e3 * now_s(); }

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// --gpu off|auto|cuda as the C API's HG_GPU_*, or -1 for anything else
inline int gpu_choice(const std::string &v) {
    return v == "off" ? HG_GPU_OFF : v == "cuda" ? HG_GPU_CUDA : v == "auto" ? HG_GPU_AUTO : -1;
}

// a message (a backend's description) inside a JSON string: quotes and backslashes become '
inline std::string json_text(const char *s) {
    std::string o;
    for (; s && *s; s++) o += *s == '"' || *s == '\\' ? '\'' : *s;
    return o;
}

} // namespace tool
