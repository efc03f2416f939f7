//! aclTensor, aclIntArray, aclTensorList and aclScalar as the simulator keeps them.

use ascend_sys::{
    ACL_BF16, ACL_BOOL, ACL_DOUBLE, ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT16, ACL_INT32,
    ACL_INT64, ACL_UINT8, ACLNN_ERR_PARAM_INVALID, ACLNN_ERR_PARAM_NULLPTR, aclDataType, aclFormat,
};

use crate::base::error::{SimError, SimResult};

/// Size in bytes of the element types operators accept.
pub(crate) fn element_size(dtype: aclDataType) -> Option<usize> {
    Some(match dtype {
        ACL_FLOAT | ACL_INT32 => 4,
        ACL_FLOAT16 | ACL_BF16 | ACL_INT16 => 2,
        ACL_DOUBLE | ACL_INT64 => 8,
        ACL_INT8 | ACL_UINT8 | ACL_BOOL => 1,
        _ => return None,
    })
}

pub(crate) use crate::rules::dtype_name;

pub(crate) fn invalid(message: impl Into<String>) -> SimError {
    SimError::new(ACLNN_ERR_PARAM_INVALID, message)
}

pub(crate) fn null(message: impl Into<String>) -> SimError {
    SimError::new(ACLNN_ERR_PARAM_NULLPTR, message)
}

/// What `aclCreateTensor` described: a view into device storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TensorDesc {
    pub(crate) dims: Vec<i64>,
    pub(crate) strides: Vec<i64>,
    pub(crate) offset: i64,
    pub(crate) dtype: aclDataType,
    pub(crate) format: aclFormat,
    pub(crate) storage_elems: i64,
    pub(crate) storage_dims: Vec<i64>,
    pub(crate) data: u64,
}

impl TensorDesc {
    /// Validates a description as `aclCreateTensor` receives it.
    pub(crate) fn new(
        dims: Vec<i64>,
        strides: Vec<i64>,
        offset: i64,
        dtype: aclDataType,
        format: aclFormat,
        storage: Vec<i64>,
        data: u64,
    ) -> SimResult<TensorDesc> {
        let size = element_size(dtype)
            .ok_or_else(|| invalid(format!("{} tensors are not simulated", dtype_name(dtype))))?;
        if dims.len() != strides.len() {
            return Err(invalid(format!(
                "{} view dims but {} strides; expected one stride per dim",
                dims.len(),
                strides.len()
            )));
        }
        if dims.iter().chain(&storage).any(|&d| d < 0)
            || strides.iter().any(|&s| s < 0)
            || offset < 0
        {
            return Err(invalid(format!(
                "negative dims, strides or offset (dims {dims:?}, strides {strides:?}, offset \
                 {offset}, storage {storage:?}); expected non-negative values"
            )));
        }
        let storage_elems = storage
            .iter()
            .try_fold(1i64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| invalid(format!("storage dims {storage:?} overflow")))?;
        let numel = dims.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d));
        if numel.is_none() {
            return Err(invalid(format!("view dims {dims:?} overflow")));
        }
        if numel != Some(0) {
            // The last element the view reaches must be inside the storage.
            let last = dims.iter().zip(&strides).try_fold(offset, |acc, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
            });
            match last {
                Some(last) if last < storage_elems => {}
                _ => {
                    return Err(invalid(format!(
                        "the view (dims {dims:?}, strides {strides:?}, offset {offset}) reaches \
                         past its storage of {storage_elems} elements"
                    )));
                }
            }
            if data == 0 {
                return Err(null("tensorData is NULL for a non-empty tensor"));
            }
            if data % 32 != 0 {
                return Err(crate::rules::violation(
                    "acl-create-tensor.data-aligned",
                    format!("tensorData {data:#x}"),
                ));
            }
            let bytes = (storage_elems as u128) * size as u128;
            if bytes > u64::MAX as u128 {
                return Err(invalid("storage size overflows"));
            }
        }
        Ok(TensorDesc {
            dims,
            strides,
            offset,
            dtype,
            format,
            storage_elems,
            storage_dims: storage,
            data,
        })
    }

    pub(crate) fn numel(&self) -> usize {
        self.dims.iter().product::<i64>() as usize
    }

    pub(crate) fn rank(&self) -> usize {
        self.dims.len()
    }

    pub(crate) fn dim(&self, i: usize) -> usize {
        self.dims[i] as usize
    }

    pub(crate) fn storage_bytes(&self) -> usize {
        self.storage_elems as usize * element_size(self.dtype).unwrap_or(1)
    }

    /// Checks rank and dtype for an operator argument.
    pub(crate) fn expect(&self, what: &str, rank: usize, dtypes: &[aclDataType]) -> SimResult<()> {
        if self.rank() != rank {
            return Err(invalid(format!(
                "{what} has dims {:?}; expected {rank} dims",
                self.dims
            )));
        }
        if !dtypes.contains(&self.dtype) {
            let names: Vec<String> = dtypes.iter().map(|&d| dtype_name(d)).collect();
            return Err(invalid(format!(
                "{what} is {}; expected one of {}",
                dtype_name(self.dtype),
                names.join(", ")
            )));
        }
        Ok(())
    }
}

impl From<&TensorDesc> for crate::rules::TensorMeta {
    fn from(t: &TensorDesc) -> Self {
        crate::rules::TensorMeta {
            dims: t.dims.clone(),
            dtype: t.dtype,
            format: t.format,
            storage: t.storage_dims.clone(),
        }
    }
}

/// `aclCreateIntArray` / `aclCreateFloatArray` / `aclCreateBoolArray` contents.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Array {
    Int(Vec<i64>),
    Float(Vec<f32>),
    Bool(Vec<bool>),
}

/// `aclCreateScalar`: the value, copied at creation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scalar {
    pub(crate) dtype: aclDataType,
    pub(crate) bytes: Vec<u8>,
}

/// `aclCreateTensorList`: handles of the tensors, which the list owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TensorList {
    pub(crate) tensors: Vec<u64>,
}
