{
  "targets": [
    {
      "target_name": "systrap",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/ptrace.cc",
        "native/memfile.cc",
        "native/stub_region.cc",
        "native/forker.cc",
        "native/exitwatch.cc",
        "native/stub/stub.S"
      ],
      "include_dirs": ["native"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": [
        "NAPI_VERSION=9",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
