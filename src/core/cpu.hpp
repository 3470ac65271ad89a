// Which vector instructions the running CPU has: the build is for any x86-64 (SSE2), and
// the scanners' AVX2 code (compiled with GCC's target pragma or attribute) is chosen at
// run time. SKYPE_ETL_CPU=baseline in the environment keeps to SSE2 (to compare, and so
// that the tests run both paths).
#pragma once

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SKYPE_ETL_X86_DISPATCH 1
/// What the AVX2 code may use: AVX2 itself, carry-less multiplication (PCLMUL) and BMI.
#define SKYPE_ETL_AVX2_TARGET "avx2,bmi,pclmul,popcnt"
#define SKYPE_ETL_TARGET_AVX2 __attribute__((target(SKYPE_ETL_AVX2_TARGET)))
#if !defined(__clang__)
/// GCC compiles a region for AVX2 with #pragma GCC target (and defines __AVX2__ there);
/// clang ignores that pragma, so there the region's code stays baseline.
#define SKYPE_ETL_AVX2_PRAGMA 1
#endif
#endif

namespace skype_etl::detail {

/// Whether the AVX2 code may run: decided once per process (the answer cannot change).
inline bool cpu_has_avx2() noexcept {
#ifdef SKYPE_ETL_X86_DISPATCH
  static const bool avx2 = [] {
    const char* forced = std::getenv("SKYPE_ETL_CPU");
    if (forced != nullptr && std::strcmp(forced, "baseline") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul") &&
           __builtin_cpu_supports("bmi") && __builtin_cpu_supports("popcnt");
  }();
  return avx2;
#else
  return false;
#endif
}

/// "avx2" or "baseline": what cpu_has_avx2() chose, for reports and benchmarks.
inline const char* cpu_kernel() noexcept {
  return cpu_has_avx2() ? "avx2" : "baseline";
}

}  // namespace skype_etl::detail
