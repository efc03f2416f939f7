//! Which CANN shared libraries may export a symbol.

/// A group of CANN libraries that export the same part of the interface.
///
/// CANN 8.x and 9.x split the interface differently, so each group lists every file name that
/// may hold its symbols; a symbol is taken from the first candidate that exports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Library {
    /// `acl*`/`aclrt*` runtime: `libacl_rt.so` in 9.x, `libascendcl.so` in 8.x (and 9.x compat).
    AclRt,
    /// aclnn tensors, scalars, arrays and executors: `libnnopbase.so`.
    NnOpBase,
    /// `aclnn<Op>` operators: one `libopapi.so` in 8.x, split per ops repository in 9.x.
    OpApi,
    /// HCCL communicator management: `libhcomm.so` in 9.x, `libhccl.so` in 8.x.
    Hcomm,
    /// HCCL collectives and point-to-point: `libhccl.so`.
    Hccl,
}

impl Library {
    /// Every library group, in declaration order.
    pub const ALL: [Library; 5] = [
        Library::AclRt,
        Library::NnOpBase,
        Library::OpApi,
        Library::Hcomm,
        Library::Hccl,
    ];

    /// The file names that may export this group's symbols, in the order they are tried.
    pub fn candidates(self) -> &'static [&'static str] {
        match self {
            Library::AclRt => &["libacl_rt.so", "libascendcl.so"],
            Library::NnOpBase => &["libnnopbase.so"],
            Library::OpApi => &[
                "libopapi.so",
                "libopapi_transformer.so",
                "libopapi_nn.so",
                "libopapi_math.so",
            ],
            Library::Hcomm => &["libhcomm.so", "libhccl.so"],
            Library::Hccl => &["libhccl.so"],
        }
    }

    /// Every distinct file name over all groups, each once, in group order.
    pub fn all_files() -> Vec<&'static str> {
        let mut files: Vec<&'static str> = Vec::new();
        for library in Library::ALL {
            for file in library.candidates() {
                if !files.contains(file) {
                    files.push(file);
                }
            }
        }
        files
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Library::AclRt => "ACL runtime",
            Library::NnOpBase => "aclnn base",
            Library::OpApi => "aclnn operators",
            Library::Hcomm => "HCCL communicator management",
            Library::Hccl => "HCCL collectives",
        }
    }
}
