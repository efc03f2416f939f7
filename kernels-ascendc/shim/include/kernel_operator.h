// Our clean-room stand-in for CANN's kernel_operator.h: the Ascend C API subset kernels-ascendc/
// uses, executed on the CPU with the 910B's rules checked (see ascend_shim_abi.h for launching).
#pragma once

#include "ascend_shim/core.h"
#include "ascend_shim/numeric.h"
#include "ascend_shim/tensor.h"
#include "ascend_shim/copy.h"
#include "ascend_shim/vector.h"
#include "ascend_shim/cube.h"
#include "ascend_shim/sync.h"
#include "ascend_shim/launch.h"
