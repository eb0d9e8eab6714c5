{
  "variables": {
    "hg_cpu_sources": [
      "native/core/error.cpp",
      "native/core/cpu.cpp",
      "native/core/threadpool.cpp",
      "native/gguf/gguf.cpp",
      "native/quant/types.cpp",
      "native/quant/quant_ref.cpp",
      "native/quant/repack.cpp",
      "native/quant/quant_k_ref.cpp",
      "native/quant/dispatch.cpp",
      "native/ops/matmul.cpp",
      "native/ops/convert.cpp",
      "native/ops/bandwidth.cpp",
      "native/ops/norm.cpp",
      "native/ops/rope.cpp",
      "native/ops/greedy.cpp",
      "native/ops/attention.cpp",
      "native/ops/activation.cpp",
      "native/ops/hlora.cpp",
      "native/ops/conv2d.cpp",
      "native/ops/group_norm.cpp",
      "native/ops/upsample.cpp",
      "native/ops/spatial_attention.cpp",
      "native/models/packed_weights.cpp",
      "native/models/phi3.cpp",
      "native/ops/layer_norm.cpp",
      "native/ops/gelu.cpp",
      "native/ops/patch_embed.cpp",
      "native/ops/vit_attention.cpp",
      "native/ops/softmax_exp.cpp",
      "native/models/clip.cpp",
      "native/models/vqgan.cpp",
      "native/models/hlora_plugin.cpp",
      "native/api/api_types.cpp",
      "native/api/api_gguf.cpp",
      "native/api/api_ops.cpp",
      "native/api/api_backend.cpp",
      "native/api/api_model.cpp",
      "native/api/api_clip.cpp",
      "native/api/api_vqgan.cpp"
    ],
    "hg_avx2_sources": [
      "native/quant/quant_avx2.cpp",
      "native/ops/vit_attention_avx2.cpp",
      "native/ops/conv2d_avx2.cpp",
      "native/ops/softmax_exp_avx2.cpp"
    ],
    "hg_avx512_sources": [
      "native/quant/quant_avx512.cpp",
      "native/ops/vit_attention_avx512.cpp",
      "native/ops/conv2d_avx512.cpp",
      "native/ops/softmax_exp_avx512.cpp"
    ],
    "hg_addon_sources": [
      "src/addon.cpp",
      "src/gguf_binding.cpp",
      "src/ops_binding.cpp",
      "src/model_binding.cpp",
      "src/clip_binding.cpp",
      "src/vqgan_binding.cpp"
    ],
    "hg_include_dirs": [
      "native/include",
      "native",
      "<!(node -p \"require('node-addon-api').include_dir\")"
    ],
    "hg_cflags": [
      "-O3",
      "-std=c++17",
      "-fexceptions",
      "-fPIC"
    ]
  },
  "target_defaults": {
    "include_dirs": [
      "<@(hg_include_dirs)"
    ],
    "cflags_cc!": [
      "-fno-exceptions",
      "-std=gnu++14",
      "-std=gnu++17"
    ],
    "cflags_cc": [
      "<@(hg_cflags)",
      "-ffp-contract=off"
    ],
    "defines": [
      "NAPI_VERSION=8",
      "NAPI_CPP_EXCEPTIONS",
      "NODE_ADDON_API_DISABLE_DEPRECATED",
      "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
    ],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "MACOSX_DEPLOYMENT_TARGET": "11.0"
    },
    "msvs_settings": {
      "VCCLCompilerTool": {
        "ExceptionHandling": 1,
        "AdditionalOptions": [
          "/std:c++17"
        ]
      }
    }
  },
  "targets": [
    {
      "target_name": "healthgpt_avx2",
      "type": "static_library",
      "sources": [
        "<@(hg_avx2_sources)"
      ],
      "conditions": [
        [
          "target_arch=='x64' and OS!='win'",
          {
            "cflags_cc": [
              "-mavx2",
              "-mfma",
              "-mf16c"
            ]
          }
        ]
      ]
    },
    {
      "target_name": "healthgpt_avx512",
      "type": "static_library",
      "sources": [
        "<@(hg_avx512_sources)"
      ],
      "conditions": [
        [
          "target_arch=='x64' and OS!='win'",
          {
            "cflags_cc": [
              "-mavx2",
              "-mfma",
              "-mf16c",
              "-mavx512f",
              "-mavx512bw",
              "-mavx512vl",
              "-mavx512dq",
              "-mavx512vnni",
              "-mavx512bf16"
            ]
          }
        ]
      ]
    },
    {
      "target_name": "healthgpt",
      "sources": [
        "<@(hg_cpu_sources)",
        "<@(hg_addon_sources)"
      ],
      "dependencies": [
        "healthgpt_avx2",
        "healthgpt_avx512"
      ]
    }
  ]
}
