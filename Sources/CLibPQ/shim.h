#ifndef TAXIHUB_CLIBPQ_SHIM_H
#define TAXIHUB_CLIBPQ_SHIM_H

// The PostgreSQL client library (Debian: libpq-dev), for the Persistence module's wrapper.
#include <libpq-fe.h>

#endif
