// netcell: umbrella header.
#pragma once

#include "netcell/backend.h"
#include "netcell/child.h"
#include "netcell/flowlog.h"
#include "netcell/manager.h"
#include "netcell/result.h"
#include "netcell/sandbox.h"
#include "netcell/types.h"
