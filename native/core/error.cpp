#include "core/error.h"

#include "healthgpt.h"

namespace hg {

static thread_local std::string last_error;
static thread_local int last_status = HG_OK;

void fail(const std::string &msg) { throw Error(msg); }

void fail(int status, const std::string &msg) { throw Error(msg, status); }

void set_last_error(const std::string &msg, int status) {
    last_error = msg;
    last_status = status;
}

} // namespace hg

extern "C" const char *hg_last_error(void) { return hg::last_error.c_str(); }

extern "C" int hg_last_status(void) { return hg::last_status; }
