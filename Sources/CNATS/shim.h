#ifndef TAXIHUB_CNATS_SHIM_H
#define TAXIHUB_CNATS_SHIM_H

// The NATS C client library (Debian: libnats-dev), for the NATSClient module's wrapper.
#include <nats/nats.h>

#endif
