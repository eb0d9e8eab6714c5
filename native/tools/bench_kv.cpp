// bench_kv: decode speed of one phi3 GGUF with different KV cache types, side by side in one
// process (a model per type, the weights mapped once), so that the machine's memory bandwidth,
// which on a shared host swings from process to process, is the same for each: every sequence
// is prefilled to depth D once per model, then rounds of N decode steps of all sequences
// together (greedy picks in the engine, as the library decodes) alternate between the models,
// each round at the same positions for every type. Prints each type's median aggregate
// tokens/s over the rounds, then one JSON object.
//
//   bench_kv MODEL.gguf [--kv-types f16,q8_0] [--seqs 4] [-d 1024] [-n 16] [-r 6] [-t threads]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "healthgpt.h"
#include "tool_common.h"

namespace {

int usage() {
    std::fprintf(stderr, "usage: bench_kv MODEL.gguf [--kv-types f16,q8_0] [--seqs 4] [-d 1024] [-n 16] [-r 6] [-t "
                         "threads]\n");
    return 2;
}

int kv_type_of(const std::string &name) {
    return name == "f16" ? HG_TYPE_F16 : name == "f32" ? HG_TYPE_F32 : name == "q8_0" ? HG_TYPE_Q8_0 : -1;
}

// One model's sequences: their positions and the tokens each picked last.
struct Run {
    std::string name;
    hg_model *m = nullptr;
    int pos = 0;
    std::vector<int32_t> next, feed;
    std::vector<double> tok_s;
};

// One batch of every sequence: n_tokens each at pos (sequence q's tokens at tokens + q * stride).
bool step(Run &r, int seqs, const int32_t *tokens, int stride, int n_tokens, int V) {
    std::vector<hg_batch_seq> b((size_t)seqs);
    for (int q = 0; q < seqs; q++) {
        hg_batch_seq &s = b[(size_t)q];
        s = hg_batch_seq{};
        s.seq = q, s.plugin = -1, s.start_pos = r.pos, s.n_tokens = n_tokens, s.tokens = tokens + q * stride;
        s.logits = 1, s.greedy_lo = 0, s.greedy_hi = V, s.next = &r.next[(size_t)q];
    }
    if (hg_model_eval_batch(r.m, b.data(), seqs, nullptr) != 0) return false;
    r.pos += n_tokens;
    return true;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') return usage();
    const char *path = argv[1];
    std::string types = "f16,q8_0";
    int seqs = 4, depth = 1024, steps = 16, rounds = 6, threads = 0;
    for (int i = 2; i < argc; i++) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        const std::string v = argv[++i];
        if (a == "--kv-types")
            types = v;
        else if (a == "--seqs")
            seqs = std::atoi(v.c_str());
        else if (a == "-d")
            depth = std::atoi(v.c_str());
        else if (a == "-n")
            steps = std::atoi(v.c_str());
        else if (a == "-r")
            rounds = std::atoi(v.c_str());
        else if (a == "-t")
            threads = std::atoi(v.c_str());
        else
            return usage();
    }
    if (seqs < 1 || depth < 1 || steps < 1 || rounds < 1) return usage();
    std::vector<Run> runs;
    std::stringstream list(types);
    for (std::string name; std::getline(list, name, ',');) {
        if (kv_type_of(name) < 0) return usage();
        Run r;
        r.name = name;
        runs.push_back(r);
    }
    if (runs.empty()) return usage();
    int V = 0;
    std::vector<int32_t> prompt;
    for (Run &r : runs) {
        hg_model_params p = hg_model_default_params();
        p.n_threads = threads;
        p.n_ctx = depth + steps * rounds + 16;
        p.n_seq = seqs;
        p.kv_type = kv_type_of(r.name);
        r.m = hg_model_load(path, &p);
        if (!r.m) {
            std::fprintf(stderr, "bench_kv: %s cache: %s\n", r.name.c_str(), hg_last_error());
            return 1;
        }
        if (prompt.empty()) { // sequence q's prompt: depth tokens from q on
            V = hg_model_n_vocab(r.m);
            prompt.resize((size_t)(depth + seqs));
            uint32_t s = 12345;
            for (int32_t &t : prompt) s = s * 1664525u + 1013904223u, t = (int32_t)(3 + (s >> 8) % (uint32_t)(V - 3));
        }
        r.next.assign((size_t)seqs, 0);
        if (!step(r, seqs, prompt.data(), 1, depth, V)) {
            std::fprintf(stderr, "bench_kv: prefill: %s\n", hg_last_error());
            return 1;
        }
    }
    std::printf("bench_kv: %s, %d sequences from depth %d, %d rounds of %d steps, on %s\n", path, seqs, depth, rounds,
                steps, hg_model_backend(runs[0].m));
    for (int round = 0; round < rounds; round++)
        for (Run &r : runs) {
            const double a = tool::now_s();
            for (int i = 0; i < steps; i++) {
                r.feed = r.next;
                if (!step(r, seqs, r.feed.data(), 1, 1, V)) {
                    std::fprintf(stderr, "bench_kv: decode: %s\n", hg_last_error());
                    return 1;
                }
            }
            r.tok_s.push_back((double)seqs * steps / (tool::now_s() - a));
        }
    std::string json;
    for (Run &r : runs) {
        const auto [lo, hi] = std::minmax_element(r.tok_s.begin(), r.tok_s.end());
        const double med = tool::median(r.tok_s);
        std::printf("%-5s cache: %.2f tok/s in all (median; %.2f to %.2f)\n", r.name.c_str(), med, *lo, *hi);
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s{\"kv_type\":\"%s\",\"tok_s\":%.3f}", json.empty() ? "" : ",", r.name.c_str(),
                      med);
        json += buf;
        hg_model_free(r.m);
    }
    std::printf("{\"engine\":\"healthgpt\",\"n_seqs\":%d,\"n_depth\":%d,\"steps\":%d,\"rounds\":%d,\"results\":[%s]}\n",
                seqs, depth, steps, rounds, json.c_str());
    return 0;
}
