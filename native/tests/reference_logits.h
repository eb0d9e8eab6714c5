// The golden-logits files of tools/reference/make_phi3_reference.py and
// make_phi3_hlora_reference.py: "HGPL", u32 version 1, u32 n_tokens, u32 n_vocab, the
// token ids (i32), then n_tokens x n_vocab float32 logits, little-endian.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

struct Reference {
    std::vector<int32_t> tokens;
    int n_vocab = 0;
    std::vector<float> logits; // n_tokens x n_vocab
    bool ok = false;
};

// ok stays false for a missing, truncated or foreign file
inline Reference read_reference(const std::string &path) {
    Reference r;
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) return r;
    char magic[4];
    uint32_t head[3];
    if (std::fread(magic, 1, 4, f) == 4 && std::memcmp(magic, "HGPL", 4) == 0 && std::fread(head, 4, 3, f) == 3 &&
        head[0] == 1 && head[1] > 0 && head[1] < 4096 && head[2] > 0 && head[2] < (1u << 20)) {
        r.tokens.resize(head[1]);
        r.n_vocab = (int)head[2];
        r.logits.resize((size_t)head[1] * head[2]);
        r.ok = std::fread(r.tokens.data(), 4, head[1], f) == head[1] &&
               std::fread(r.logits.data(), 4, r.logits.size(), f) == r.logits.size();
    }
    std::fclose(f);
    return r;
}
