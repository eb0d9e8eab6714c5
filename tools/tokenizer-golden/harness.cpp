// Tokenizes a batch of texts with llama.cpp (vocab-only model load) and prints the ids and the
// detokenized bytes, so tools/tokenizer-golden/make-golden.ts can record llama.cpp's answers.
// Not part of the engine build; see tools/tokenizer-golden/README.md.
//
// Input records: u8 add_special, u8 parse_special, u8 remove_special, u8 unparse_special,
// u32 little-endian byte length, bytes. Output: one line per record, "id,id,...\thexbytes".
#include "llama.h"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

static void quiet(ggml_log_level, const char *, void *) {}

int main(int argc, char ** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s vocab.gguf input.bin output.txt\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        std::fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);

    std::ifstream in(argv[2], std::ios::binary);
    std::vector<unsigned char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    FILE * out = std::fopen(argv[3], "wb");
    if (!out) return 1;

    size_t off = 0;
    while (off + 8 <= buf.size()) {
        const bool add_special = buf[off] != 0;
        const bool parse_special = buf[off + 1] != 0;
        const bool remove_special = buf[off + 2] != 0;
        const bool unparse_special = buf[off + 3] != 0;
        const uint32_t len = uint32_t(buf[off + 4]) | uint32_t(buf[off + 5]) << 8 | uint32_t(buf[off + 6]) << 16 | uint32_t(buf[off + 7]) << 24;
        off += 8;
        const std::string text(reinterpret_cast<const char *>(buf.data() + off), len);
        off += len;

        std::vector<llama_token> ids(text.size() + 16);
        int n = llama_tokenize(vocab, text.data(), int32_t(text.size()), ids.data(), int32_t(ids.size()), add_special, parse_special);
        if (n < 0) {
            ids.resize(size_t(-n));
            n = llama_tokenize(vocab, text.data(), int32_t(text.size()), ids.data(), int32_t(ids.size()), add_special, parse_special);
        }
        ids.resize(size_t(n));

        std::string det(text.size() * 4 + 64, '\0');
        int m = llama_detokenize(vocab, ids.data(), int32_t(ids.size()), det.data(), int32_t(det.size()), remove_special, unparse_special);
        if (m < 0) {
            det.resize(size_t(-m));
            m = llama_detokenize(vocab, ids.data(), int32_t(ids.size()), det.data(), int32_t(det.size()), remove_special, unparse_special);
        }
        det.resize(size_t(m));

        for (size_t i = 0; i < ids.size(); i++) std::fprintf(out, i ? ",%d" : "%d", ids[i]);
        std::fputc('\t', out);
        for (unsigned char c : det) std::fprintf(out, "%02x", c);
        std::fputc('\n', out);
    }
    std::fclose(out);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
