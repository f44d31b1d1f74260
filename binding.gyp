{
  "targets": [
    {
      "target_name": "systrap_stub",
      "type": "static_library",
      "sources": ["native/stub/stub.S", "native/stub/sysmsg.c", "native/stub/trace_ring.c"],
      "cflags": [
        "-O2", "-ffreestanding", "-fno-builtin", "-fno-stack-protector", "-mgeneral-regs-only",
        "-fno-jump-tables", "-fno-tree-switch-conversion", "-fno-tree-loop-distribute-patterns", "-fno-asynchronous-unwind-tables",
        "-fcf-protection=none", "-fvisibility=hidden", "-fPIC", "-Wall"
      ]
    },
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
        "native/sandbox.cc",
        "native/liveness.cc",
        "native/procfd.cc",
        "native/execprobe.cc",
        "native/cpuclock.cc",
        "native/hostio.cc"
      ],
      "include_dirs": ["native"],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
        "systrap_stub"
      ],
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
