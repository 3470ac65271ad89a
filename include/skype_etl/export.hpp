// SKYPE_ETL_API marks what a shared libskype_etl exports: the public API. Everything else
// in the library is hidden (-fvisibility=hidden), so that programs cannot come to depend
// on internals.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define SKYPE_ETL_API __attribute__((visibility("default")))
#else
#define SKYPE_ETL_API
#endif
