//! One call as the rule validator sees it: the C arguments by their documented names.

use ascend_sys::{
    ACL_BF16, ACL_BOOL, ACL_DOUBLE, ACL_FLOAT, ACL_FLOAT16, ACL_FORMAT_FRACTAL_NZ, ACL_FORMAT_ND,
    ACL_INT8, ACL_INT16, ACL_INT32, ACL_INT64, ACL_UINT8, aclDataType, aclFormat,
};

/// What a tensor argument looked like: enough to check dtype and shape rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorMeta {
    /// View dims.
    pub dims: Vec<i64>,
    /// Element type.
    pub dtype: aclDataType,
    /// Storage format (`ACL_FORMAT_ND` unless the operator takes fractal layouts).
    pub format: aclFormat,
    /// Storage dims (the view's dims for ND tensors; the fractal shape for `FRACTAL_NZ`).
    pub storage: Vec<i64>,
}

impl TensorMeta {
    /// A contiguous ND tensor of `dims` and `dtype`.
    pub fn new(dims: &[i64], dtype: aclDataType) -> TensorMeta {
        TensorMeta {
            dims: dims.to_vec(),
            dtype,
            format: ACL_FORMAT_ND,
            storage: dims.to_vec(),
        }
    }

    /// A `FRACTAL_NZ` matrix seen as `[k, n]`, stored as `nz_storage(k, n, dtype)`.
    pub fn nz(k: i64, n: i64, dtype: aclDataType) -> TensorMeta {
        TensorMeta {
            dims: vec![k, n],
            dtype,
            format: ACL_FORMAT_FRACTAL_NZ,
            storage: nz_storage(k, n, dtype),
        }
    }

    /// Dim `i`, or −1 past the rank (so relations never index out of bounds).
    pub fn dim(&self, i: usize) -> i64 {
        self.dims.get(i).copied().unwrap_or(-1)
    }

    /// Elements of the view (0 for negative dims).
    pub fn numel(&self) -> i64 {
        self.dims.iter().map(|&d| d.max(0)).product()
    }
}

/// The storage dims of a `[k, n]` matrix in `FRACTAL_NZ`: `[n/c0, k/16, 16, c0]`, with 16-row
/// fractals of 32 bytes per row (`c0` = 16 for 2-byte types, 32 for 1-byte types), the fractals
/// column-major ("N") and each fractal row-major ("Z").
pub fn nz_storage(k: i64, n: i64, dtype: aclDataType) -> Vec<i64> {
    let c0 = if matches!(dtype, ACL_INT8 | ACL_UINT8) {
        32
    } else {
        16
    };
    vec![n / c0, k / 16, 16, c0]
}

/// One C argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// An `aclTensor*` (None = NULL).
    Tensor(Option<TensorMeta>),
    /// An `aclTensorList*` (None = NULL).
    List(Option<Vec<TensorMeta>>),
    /// An `aclIntArray*` (None = NULL).
    Ints(Option<Vec<i64>>),
    /// An integer attribute (also `aclDataType` attributes).
    Int(i64),
    /// A floating-point attribute.
    Float(f64),
    /// A boolean attribute.
    Bool(bool),
    /// A `char*` attribute (None = NULL).
    Str(Option<String>),
}

/// The arguments of one call, in C order, by their documented names.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The operator, as the rules name it (`aclnnMoeGatingTopK`).
    pub op: &'static str,
    /// Name and value of each argument, in the C prototype's order.
    pub args: Vec<(&'static str, Arg)>,
}

impl Call {
    /// A call of `op` with no arguments yet.
    pub fn new(op: &'static str) -> Call {
        Call {
            op,
            args: Vec::new(),
        }
    }

    /// Appends an argument (builder style).
    pub fn with(mut self, name: &'static str, arg: Arg) -> Call {
        self.args.push((name, arg));
        self
    }

    /// Appends a tensor argument.
    pub fn tensor(self, name: &'static str, meta: Option<TensorMeta>) -> Call {
        self.with(name, Arg::Tensor(meta))
    }

    /// Appends an integer attribute.
    pub fn int(self, name: &'static str, value: i64) -> Call {
        self.with(name, Arg::Int(value))
    }

    /// The argument called `name`. The table names arguments by their documented names; an
    /// unknown name is a defect of the table, which the per-rule test finds.
    pub fn arg(&self, name: &str) -> &Arg {
        match self.args.iter().find(|(n, _)| *n == name) {
            Some((_, a)) => a,
            None => panic!("rule table: {} has no argument {name}", self.op),
        }
    }

    /// Replaces the argument called `name` (for making violating calls).
    pub fn set(&mut self, name: &str, arg: Arg) {
        match self.args.iter_mut().find(|(n, _)| *n == name) {
            Some((_, a)) => *a = arg,
            None => panic!("rule table: {} has no argument {name}", self.op),
        }
    }

    /// Changes the tensor `name` with `f` (for making violating calls).
    pub fn edit_tensor(&mut self, name: &str, f: impl FnOnce(&mut TensorMeta)) {
        match self.args.iter_mut().find(|(n, _)| *n == name) {
            Some((_, Arg::Tensor(Some(t)))) => f(t),
            Some((_, Arg::List(Some(l)))) if !l.is_empty() => f(&mut l[0]),
            _ => panic!("rule table: {} has no present tensor {name}", self.op),
        }
    }

    /// The tensor `name` (the first of a list), or None when NULL.
    pub fn tensor_of(&self, name: &str) -> Option<&TensorMeta> {
        match self.arg(name) {
            Arg::Tensor(t) => t.as_ref(),
            Arg::List(l) => l.as_ref().and_then(|l| l.first()),
            other => panic!("rule table: {}.{name} is {other:?}, not a tensor", self.op),
        }
    }

    /// Every tensor of argument `name` (one for a tensor, all for a list; none when NULL).
    pub fn tensors_of(&self, name: &str) -> Vec<&TensorMeta> {
        match self.arg(name) {
            Arg::Tensor(t) => t.iter().collect(),
            Arg::List(l) => l.iter().flatten().collect(),
            other => panic!("rule table: {}.{name} is {other:?}, not a tensor", self.op),
        }
    }

    /// Whether tensor, list or array argument `name` is non-NULL.
    pub fn present(&self, name: &str) -> bool {
        match self.arg(name) {
            Arg::Tensor(t) => t.is_some(),
            Arg::List(l) => l.is_some(),
            Arg::Ints(v) => v.is_some(),
            other => panic!("rule table: {}.{name} is {other:?}, not a pointer", self.op),
        }
    }

    /// Integer attribute `name`.
    pub fn int_of(&self, name: &str) -> i64 {
        match self.arg(name) {
            Arg::Int(v) => *v,
            Arg::Bool(b) => i64::from(*b),
            other => panic!(
                "rule table: {}.{name} is {other:?}, not an integer",
                self.op
            ),
        }
    }

    /// Integer-array argument `name` (None when NULL).
    pub fn ints_of(&self, name: &str) -> Option<&[i64]> {
        match self.arg(name) {
            Arg::Ints(v) => v.as_deref(),
            other => panic!(
                "rule table: {}.{name} is {other:?}, not an int array",
                self.op
            ),
        }
    }

    /// String attribute `name` (None when NULL).
    pub fn str_of(&self, name: &str) -> Option<&str> {
        match self.arg(name) {
            Arg::Str(v) => v.as_deref(),
            other => panic!("rule table: {}.{name} is {other:?}, not a string", self.op),
        }
    }

    /// Float attribute `name`.
    pub fn float_of(&self, name: &str) -> f64 {
        match self.arg(name) {
            Arg::Float(v) => *v,
            other => panic!("rule table: {}.{name} is {other:?}, not a float", self.op),
        }
    }

    /// Boolean attribute `name`.
    pub fn bool_of(&self, name: &str) -> bool {
        match self.arg(name) {
            Arg::Bool(b) => *b,
            other => panic!("rule table: {}.{name} is {other:?}, not a bool", self.op),
        }
    }
}

/// A readable name of an `aclDataType`, for messages.
pub fn dtype_name(dtype: aclDataType) -> String {
    match dtype {
        ACL_FLOAT => "FLOAT".into(),
        ACL_FLOAT16 => "FLOAT16".into(),
        ACL_BF16 => "BF16".into(),
        ACL_DOUBLE => "DOUBLE".into(),
        ACL_INT32 => "INT32".into(),
        ACL_INT64 => "INT64".into(),
        ACL_INT16 => "INT16".into(),
        ACL_INT8 => "INT8".into(),
        ACL_UINT8 => "UINT8".into(),
        ACL_BOOL => "BOOL".into(),
        other => format!("aclDataType {other}"),
    }
}
