#include "core/error.h"

#include "healthgpt.h"

namespace hg {

static thread_local std::string last_error;

void fail(const std::string &msg) { throw Error(msg); }

void set_last_error(const std::string &msg) { last_error = msg; }

} // namespace hg

extern "C" const char *hg_last_error(void) { return hg::last_error.c_str(); }
