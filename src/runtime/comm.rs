//! HCCL communicators: collectives between devices, each queued on a [`Stream`] of the
//! calling rank's device.
//!
//! Every rank is a [`Device`] driven by its own thread (or process). Rank 0 makes a
//! [`RootInfo`] and hands it to the others out of band (a channel, a file, a socket); every
//! rank then calls [`Comm::init`], which returns once all have joined. A process that drives
//! every device builds all ranks at once with [`Comm::init_all`]; ranks listed in a rank-table
//! file join with [`Comm::init_rank_table`]; [`Comm::split`] makes a communicator of some of
//! a communicator's ranks. [`Comm::init_with`], [`Comm::init_rank_table_with`] and
//! [`Comm::split_with`] take a [`CommConfig`] (buffer size, deterministic reductions, a name).
//! Collectives are
//! asynchronous like any stream work, and take part in the buffers' cross-stream use
//! tracking, so a buffer is not reused or freed while a collective may still touch it.
//!
//! ```
//! use ascend_npu::runtime::comm::{Comm, ReduceOp, RootInfo};
//! use ascend_npu::{select_backend, Backend, Device};
//! select_backend(Backend::Sim)?;
//! // A one-rank communicator: the sum over ranks is the input.
//! let device = Device::open(0)?;
//! let comm = Comm::init(&device, &RootInfo::new(&device)?, 0, 1)?;
//! let stream = device.new_stream()?;
//! let x = stream.upload(&[1.0f32, 2.0])?;
//! let mut sum = stream.alloc_zeroed::<f32>(2)?;
//! comm.all_reduce(&stream, &x, &mut sum, ReduceOp::Sum)?;
//! assert_eq!(sum.to_vec()?, [1.0, 2.0]);
//! # Ok::<(), ascend_npu::Error>(())
//! ```

use std::cell::RefCell;

use ascend_sys::{HcclComm, HcclDataType, HcclReduceOp, HcclRootInfo};
use half::{bf16, f16};

use super::device::Device;
use super::device_buffer::{DeviceSlice, DeviceSliceMut, read_access, write_access};
use super::drop_errors;
use super::stream::Stream;
use super::tracking::Access;
use crate::checked_call::{c_call, c_fn};
use crate::error::{Error, Result};

mod sealed {
    pub trait Sealed {}
}

/// Element types HCCL moves. Sealed: the data type code must match the layout.
pub trait CommElement: bytemuck::Pod + sealed::Sealed {
    /// The `HcclDataType` of the element.
    const DTYPE: HcclDataType;
    /// Whether A2/A3 can reduce it (AllReduce, ReduceScatter): not the unsigned types, fp64.
    const REDUCIBLE: bool;
}

macro_rules! elements {
    ($($t:ty => $code:ident, $reducible:expr;)*) => {$(
        impl sealed::Sealed for $t {}
        impl CommElement for $t {
            const DTYPE: HcclDataType = ascend_sys::$code;
            const REDUCIBLE: bool = $reducible;
        }
    )*};
}

elements! {
    i8 => HCCL_DATA_TYPE_INT8, true;
    i16 => HCCL_DATA_TYPE_INT16, true;
    i32 => HCCL_DATA_TYPE_INT32, true;
    i64 => HCCL_DATA_TYPE_INT64, true;
    u8 => HCCL_DATA_TYPE_UINT8, false;
    u16 => HCCL_DATA_TYPE_UINT16, false;
    u32 => HCCL_DATA_TYPE_UINT32, false;
    u64 => HCCL_DATA_TYPE_UINT64, false;
    f16 => HCCL_DATA_TYPE_FP16, true;
    bf16 => HCCL_DATA_TYPE_BFP16, true;
    f32 => HCCL_DATA_TYPE_FP32, true;
    f64 => HCCL_DATA_TYPE_FP64, false;
    // Moved as bytes: HCCL's FP8 types exist only on Ascend 950; nothing reduces FP8.
    crate::fp8::F8E4M3 => HCCL_DATA_TYPE_UINT8, false;
}

/// A reduction of AllReduce and ReduceScatter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Product (not for i16 and bf16 on A2/A3).
    Prod,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
}

impl ReduceOp {
    fn raw(self) -> HcclReduceOp {
        match self {
            ReduceOp::Sum => ascend_sys::HCCL_REDUCE_SUM,
            ReduceOp::Prod => ascend_sys::HCCL_REDUCE_PROD,
            ReduceOp::Max => ascend_sys::HCCL_REDUCE_MAX,
            ReduceOp::Min => ascend_sys::HCCL_REDUCE_MIN,
        }
    }
}

/// The opaque 4108-byte blob that names a communicator being built. Rank 0 makes it; every
/// rank passes the same bytes to [`Comm::init`].
#[derive(Clone)]
pub struct RootInfo(Box<HcclRootInfo>);

impl RootInfo {
    /// Asks HCCL for a new root info, on `device` (rank 0's).
    pub fn new(device: &Device) -> Result<RootInfo> {
        device.inner.bind()?;
        let api = device.inner.api;
        let mut info = Box::new(HcclRootInfo {
            internal: [0; ascend_sys::HCCL_ROOT_INFO_BYTES as usize],
        });
        // SAFETY: `info` is a whole HcclRootInfo for HCCL to fill.
        unsafe { c_call!(api, HcclGetRootInfo(&mut *info)) }?;
        Ok(RootInfo(info))
    }

    /// The bytes, to send to the other ranks.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0.internal)
    }

    /// A root info received from rank 0.
    pub fn from_bytes(bytes: &[u8]) -> Result<RootInfo> {
        let mut info = Box::new(HcclRootInfo {
            internal: [0; ascend_sys::HCCL_ROOT_INFO_BYTES as usize],
        });
        if bytes.len() != info.internal.len() {
            return Err(Error::invalid(
                format!("a root info of {} bytes", bytes.len()),
                format!("HCCL_ROOT_INFO_BYTES = {} bytes", info.internal.len()),
            ));
        }
        bytemuck::cast_slice_mut(&mut info.internal).copy_from_slice(bytes);
        Ok(RootInfo(info))
    }
}

impl std::fmt::Debug for RootInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootInfo(..)")
    }
}

/// Options of a new communicator (`HcclCommConfig`); each `None` keeps HCCL's default.
///
/// Our reading of the C struct, from `hccl_types.h` and the `HcclCommConfig` and
/// `HcclCommConfigInit` pages (not yet checked on hardware): a 24-byte header `{ size_t size;
/// uint32_t magicWord (0xf0f0f0f0); uint32_t version; uint64_t reserved }`, which the
/// header-inline (not exported) `HcclCommConfigInit` fills, then `uint32_t hcclBufferSize` (MB,
/// at least 1), `uint32_t hcclDeterministic` (0 or 1) and `char hcclCommName[128]`. We send
/// version 2, those three fields (160 bytes); HCCL reads the `size` bytes it is given and keeps
/// its defaults for fields that newer versions append. A field left alone holds
/// `0xffffffff` (`HCCL_COMM_CONFIG_NOT_SET`), an unnamed communicator an empty name, as
/// `HcclCommConfigInit` writes them.
///
/// ```
/// use ascend_npu::runtime::comm::{Comm, CommConfig, RootInfo};
/// use ascend_npu::{select_backend, Backend, Device};
/// select_backend(Backend::Sim)?;
/// let device = Device::open(0)?;
/// let config = CommConfig {
///     buffer_size_mb: Some(512),
///     deterministic: Some(true),
///     name: Some("ep-doc".into()),
/// };
/// let comm = Comm::init_with(&device, &RootInfo::new(&device)?, 0, 1, &config)?;
/// assert_eq!(comm.name()?, "ep-doc");
/// assert_eq!(comm.buffer_size_mb(), Some(512));
/// # Ok::<(), ascend_npu::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommConfig {
    /// `hcclBufferSize`: MB of the buffer each rank exchanges data through (at least 1; the
    /// default is `HCCL_BUFFSIZE`, else 200). The MC2 operators need it large enough for
    /// their formula (see `ops::ep`).
    pub buffer_size_mb: Option<u32>,
    /// `hcclDeterministic`: reductions in a fixed order (`true`) or in HCCL's choice. The
    /// simulator always folds in rank order.
    pub deterministic: Option<bool>,
    /// `hcclCommName`: the name [`Comm::name`] reports (1 to 127 bytes, no NUL), unique among
    /// the live communicators of the rank's device; by default HCCL makes one.
    pub name: Option<String>,
}

impl CommConfig {
    /// The C struct, or what is wrong with a field.
    fn raw(&self) -> Result<ascend_sys::HcclCommConfig> {
        let not_set = ascend_sys::HCCL_COMM_CONFIG_NOT_SET;
        let mut name = [0 as std::ffi::c_char; ascend_sys::COMM_NAME_MAX_LENGTH as usize];
        if let Some(given) = &self.name {
            if given.is_empty() || given.len() >= name.len() || given.contains('\0') {
                return Err(Error::invalid(
                    format!("a communicator name of {} bytes: {given:?}", given.len()),
                    format!("1 to {} bytes without NUL", name.len() - 1),
                ));
            }
            for (dst, &b) in name.iter_mut().zip(given.as_bytes()) {
                *dst = b as std::ffi::c_char;
            }
        }
        let buffer = match self.buffer_size_mb {
            Some(mb) if mb == 0 || mb == not_set => {
                return Err(Error::invalid(
                    format!("a buffer of {mb} MB"),
                    format!("1 to {} MB ({not_set:#x} means not set)", not_set - 1),
                ));
            }
            Some(mb) => mb,
            None => not_set,
        };
        Ok(ascend_sys::HcclCommConfig {
            size: std::mem::size_of::<ascend_sys::HcclCommConfig>(),
            magicWord: ascend_sys::HCCL_COMM_CONFIG_MAGIC_WORD,
            version: ascend_sys::HCCL_COMM_CONFIG_VERSION,
            reserved: 0,
            hcclBufferSize: buffer,
            hcclDeterministic: self.deterministic.map_or(not_set, u32::from),
            hcclCommName: name,
        })
    }
}

/// Counts and displacements (in elements) of [`Comm::all_to_all_v`], one per rank.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllToAllV {
    /// Elements sent to each rank.
    pub send_counts: Vec<u64>,
    /// Where each rank's elements start in the send buffer.
    pub send_displs: Vec<u64>,
    /// Elements received from each rank (must equal that rank's send count to this one).
    pub recv_counts: Vec<u64>,
    /// Where each rank's elements go in the receive buffer.
    pub recv_displs: Vec<u64>,
}

impl AllToAllV {
    /// Packed layouts: each rank's part follows the previous one's.
    pub fn packed(send_counts: Vec<u64>, recv_counts: Vec<u64>) -> AllToAllV {
        let prefix = |c: &[u64]| {
            c.iter()
                .scan(0u64, |acc, &n| {
                    let start = *acc;
                    *acc = acc.saturating_add(n);
                    Some(start)
                })
                .collect()
        };
        AllToAllV {
            send_displs: prefix(&send_counts),
            recv_displs: prefix(&recv_counts),
            send_counts,
            recv_counts,
        }
    }
}

/// One rank of an HCCL communicator. `Send` (a rank may move to another thread) but not
/// `Sync`: HCCL orders a rank's calls by the order they are made, which two threads sharing a
/// rank could not keep.
pub struct Comm {
    raw: HcclComm,
    device: Device,
    rank: u32,
    size: u32,
    /// Streams that queued collectives: dropping waits for them before destroying. (A
    /// `RefCell` also makes the type `!Sync`.)
    used: RefCell<Vec<Stream>>,
    /// The communicator the MC2 operators run on (made on first use; they must have one of
    /// their own, see [`Comm::mc2`]).
    mc2: std::cell::OnceCell<Box<Comm>>,
    /// The `hcclBufferSize` it was configured with.
    buffer_size_mb: Option<u32>,
}

// SAFETY: the handle belongs to the process-wide HCCL instance and is usable from any thread
// that binds the device's context, which every method does first.
unsafe impl Send for Comm {}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comm")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("device", &self.device.id())
            .finish()
    }
}

impl Comm {
    /// Joins rank `rank` of a `size`-rank communicator named by `root`, on `device`. Blocks
    /// until every rank has joined (or HCCL's timeout passes).
    pub fn init(device: &Device, root: &RootInfo, rank: u32, size: u32) -> Result<Comm> {
        Comm::join(device, root, (rank, size), None)
    }

    /// [`Comm::init`] with `config` (`HcclCommInitRootInfoConfig`). Every rank passes its own;
    /// a name is the rank's own too.
    pub fn init_with(
        device: &Device,
        root: &RootInfo,
        rank: u32,
        size: u32,
        config: &CommConfig,
    ) -> Result<Comm> {
        Comm::join(device, root, (rank, size), Some(config))
    }

    /// `HcclCommInitRootInfo`, or `...Config` with `config`.
    fn join(
        device: &Device,
        root: &RootInfo,
        (rank, size): (u32, u32),
        config: Option<&CommConfig>,
    ) -> Result<Comm> {
        if size == 0 || rank >= size {
            return Err(Error::invalid(
                format!("rank {rank} of a {size}-rank communicator"),
                "size >= 1 and rank < size",
            ));
        }
        let raw_config = config.map(CommConfig::raw).transpose()?;
        device.inner.bind()?;
        let api = device.inner.api;
        let mut raw: HcclComm = std::ptr::null_mut();
        match &raw_config {
            // SAFETY: a whole root info and a valid out-pointer.
            None => unsafe { c_call!(api, HcclCommInitRootInfo(size, &*root.0, rank, &mut raw)) },
            // SAFETY: as above, with a whole configuration that HCCL only reads.
            Some(c) => unsafe {
                c_call!(
                    api,
                    HcclCommInitRootInfoConfig(size, &*root.0, rank, c, &mut raw)
                )
            },
        }?;
        Ok(Comm {
            raw,
            device: device.clone(),
            rank,
            size,
            used: RefCell::new(Vec::new()),
            mc2: std::cell::OnceCell::new(),
            buffer_size_mb: config.and_then(|c| c.buffer_size_mb),
        })
    }

    /// Every rank of a new communicator in one call, rank `i` on `devices[i]`, for a process
    /// that drives several devices itself (`HcclCommInitAll`). Each [`Comm`] can then move to
    /// the thread that drives its device.
    pub fn init_all(devices: &[Device]) -> Result<Vec<Comm>> {
        let ids: Vec<i32> = devices.iter().map(|d| d.id() as i32).collect();
        if let Some(i) = (1..ids.len()).find(|&i| ids[..i].contains(&ids[i])) {
            return Err(Error::invalid(
                format!("devices {ids:?}, device {} twice (at {i})", ids[i]),
                "at least one device, each once",
            ));
        }
        let Some(first) = devices.first() else {
            return Err(Error::invalid(
                "no devices",
                "at least one device, each once",
            ));
        };
        first.inner.bind()?;
        let api = first.inner.api;
        let mut raw: Vec<HcclComm> = vec![std::ptr::null_mut(); ids.len()];
        let mut ids_arg = ids.clone();
        let ndev = ids.len() as u32;
        // SAFETY: `ids_arg` holds `ndev` device ids and `raw` room for `ndev` handles.
        unsafe {
            c_call!(
                api,
                HcclCommInitAll(ndev, ids_arg.as_mut_ptr(), raw.as_mut_ptr())
            )
        }?;
        let size = ids.len() as u32;
        Ok(raw
            .into_iter()
            .zip(devices)
            .enumerate()
            .map(|(rank, (raw, device))| Comm {
                raw,
                device: device.clone(),
                rank: rank as u32,
                size,
                used: RefCell::new(Vec::new()),
                mc2: std::cell::OnceCell::new(),
                buffer_size_mb: None,
            })
            .collect())
    }

    /// Joins rank `rank` of the communicator a rank-table JSON file describes
    /// (`HcclCommInitClusterInfo`), on `device`, which must be the one the table gives `rank`.
    /// Blocks until every rank of the table has joined.
    pub fn init_rank_table(
        device: &Device,
        rank_table: &std::path::Path,
        rank: u32,
    ) -> Result<Comm> {
        Comm::join_rank_table(device, rank_table, rank, None)
    }

    /// [`Comm::init_rank_table`] with `config` (`HcclCommInitClusterInfoConfig`).
    pub fn init_rank_table_with(
        device: &Device,
        rank_table: &std::path::Path,
        rank: u32,
        config: &CommConfig,
    ) -> Result<Comm> {
        Comm::join_rank_table(device, rank_table, rank, Some(config))
    }

    /// `HcclCommInitClusterInfo`, or `...Config` with `config`.
    fn join_rank_table(
        device: &Device,
        rank_table: &std::path::Path,
        rank: u32,
        config: Option<&CommConfig>,
    ) -> Result<Comm> {
        let path = rank_table.to_str().ok_or_else(|| {
            Error::invalid(
                format!("rank-table path {}", rank_table.display()),
                "a UTF-8 path",
            )
        })?;
        let path = std::ffi::CString::new(path).map_err(|_| {
            Error::invalid(
                format!("rank-table path {path:?} with a NUL byte"),
                "a path without NUL bytes",
            )
        })?;
        if path.as_bytes_with_nul().len() > 4096 {
            return Err(Error::invalid(
                format!("a rank-table path of {} bytes", path.as_bytes().len()),
                "at most 4095 bytes (4096 with the NUL)",
            ));
        }
        let mut raw_config = config.map(CommConfig::raw).transpose()?;
        device.inner.bind()?;
        let api = device.inner.api;
        let mut raw: HcclComm = std::ptr::null_mut();
        let path = path.as_ptr();
        match &mut raw_config {
            // SAFETY: a NUL-terminated path and a valid out-pointer.
            None => unsafe { c_call!(api, HcclCommInitClusterInfo(path, rank, &mut raw)) },
            // SAFETY: as above, with a whole configuration.
            Some(c) => unsafe {
                c_call!(api, HcclCommInitClusterInfoConfig(path, rank, c, &mut raw))
            },
        }?;
        Comm::adopt(raw, device, config)
    }

    /// Rank `ranks.iter().position(self.rank())` of a new communicator made of this one's
    /// `ranks` (`HcclCreateSubCommConfig`); each of them calls it with the same `ranks` and
    /// `id`, which tells the sub-communicators of one parent apart. Blocks until all have.
    pub fn split(&self, ranks: &[u32], id: u64) -> Result<Comm> {
        self.split_with(ranks, id, &CommConfig::default())
    }

    /// [`Comm::split`] with `config` for the new communicator.
    pub fn split_with(&self, ranks: &[u32], id: u64, config: &CommConfig) -> Result<Comm> {
        let Some(sub_rank) = ranks.iter().position(|&r| r == self.rank) else {
            return Err(Error::invalid(
                format!("a split into ranks {ranks:?} called by rank {}", self.rank),
                "the calling rank among the ranks",
            ));
        };
        if let Some(&r) = ranks.iter().find(|&&r| r >= self.size) {
            return Err(Error::invalid(
                format!("rank {r} in a split of a {}-rank communicator", self.size),
                "ranks of this communicator, each once",
            ));
        }
        if (1..ranks.len()).any(|i| ranks[..i].contains(&ranks[i])) {
            return Err(Error::invalid(
                format!("ranks {ranks:?} with a repeat"),
                "ranks of this communicator, each once",
            ));
        }
        let mut raw_config = config.raw()?;
        let mut ids = ranks.to_vec();
        let mut parent = self.raw;
        let mut raw: HcclComm = std::ptr::null_mut();
        let api = self.bound_api()?;
        let rank_num = ids.len() as u32;
        // SAFETY: a live parent handle, `ranks.len()` rank ids, a whole configuration and a
        // valid out-pointer.
        unsafe {
            c_call!(
                api,
                HcclCreateSubCommConfig(
                    &mut parent,
                    rank_num,
                    ids.as_mut_ptr(),
                    id,
                    sub_rank as u32,
                    &mut raw_config,
                    &mut raw
                )
            )
        }?;
        Comm::adopt(raw, &self.device, Some(config))
    }

    /// Takes ownership of a new handle on `device`, made with `config`, asking HCCL its rank
    /// and size.
    fn adopt(raw: HcclComm, device: &Device, config: Option<&CommConfig>) -> Result<Comm> {
        let mut comm = Comm {
            raw,
            device: device.clone(),
            rank: 0,
            size: 0,
            used: RefCell::new(Vec::new()),
            mc2: std::cell::OnceCell::new(),
            buffer_size_mb: config.and_then(|c| c.buffer_size_mb),
        };
        // From here on, an error drops `comm`, which destroys the handle.
        let (mut rank, mut size) = (0u32, 0u32);
        let api = comm.bound_api()?;
        // SAFETY: a live handle and valid out-pointers.
        unsafe { c_call!(api, HcclGetRankId(raw, &mut rank)) }?;
        // SAFETY: as above.
        unsafe { c_call!(api, HcclGetRankSize(raw, &mut size)) }?;
        (comm.rank, comm.size) = (rank, size);
        Ok(comm)
    }

    /// This rank.
    pub fn rank(&self) -> u32 {
        self.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The device of this rank.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The buffer size (MB) this communicator was configured with ([`CommConfig`]), if any;
    /// otherwise HCCL uses `HCCL_BUFFSIZE`, else 200 MB.
    pub fn buffer_size_mb(&self) -> Option<u32> {
        self.buffer_size_mb
    }

    /// The raw handle, for HCCL calls this crate does not wrap. It stays owned by `self`.
    pub fn raw(&self) -> HcclComm {
        self.raw
    }

    /// The first asynchronous failure of this communicator's collectives, if any. A failed
    /// communicator must be dropped and rebuilt from a new [`RootInfo`]. The failure is an
    /// [`Error::Hccl`] naming `HcclGetCommAsyncError`, the query that reported it.
    pub fn async_error(&self) -> Result<()> {
        let query = c_fn!(self.bound_api()?, HcclGetCommAsyncError)?;
        let mut code = ascend_sys::HCCL_SUCCESS;
        // SAFETY: valid communicator and out-pointer.
        query.check(unsafe { (query.ptr())(self.raw, &mut code) })?;
        query.check(code)
    }

    /// The communicator's name (`HcclGetCommName`), as operators that take a communicator by
    /// name (the MC2 ops' `groupEp`) want it.
    pub fn name(&self) -> Result<String> {
        let api = self.bound_api()?;
        let mut buf = [0 as std::ffi::c_char; ascend_sys::COMM_NAME_MAX_LENGTH as usize];
        // SAFETY: a live handle and a buffer of COMM_NAME_MAX_LENGTH bytes, as documented.
        unsafe { c_call!(api, HcclGetCommName(self.raw, buf.as_mut_ptr())) }?;
        // A name that fills the buffer still ends here.
        buf[buf.len() - 1] = 0;
        // SAFETY: `buf` holds a NUL (its last byte at least) and outlives the borrow.
        let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        Ok(name.to_string_lossy().into_owned())
    }

    /// A communicator of the same ranks for the MC2 operators alone (their EP communicator
    /// may run no other operation), split from this one on first use and kept. A collective:
    /// every rank calls it at the same point.
    pub(crate) fn mc2(&self) -> Result<&Comm> {
        if let Some(c) = self.mc2.get() {
            return Ok(c);
        }
        /// The split id of the MC2 communicator ("MC2" in ASCII).
        const MC2_SPLIT_ID: u64 = 0x004d_4332;
        let ranks: Vec<u32> = (0..self.size).collect();
        // The ops exchange through its buffer: the size this one was configured with.
        let config = CommConfig {
            buffer_size_mb: self.buffer_size_mb,
            ..CommConfig::default()
        };
        let sub = self.split_with(&ranks, MC2_SPLIT_ID, &config)?;
        Ok(self.mc2.get_or_init(|| Box::new(sub)))
    }

    /// Notes that `stream` queued work on this communicator (dropping waits for it).
    pub(crate) fn note_stream(&self, stream: &Stream) {
        let mut used = self.used.borrow_mut();
        if !used.iter().any(|s| s.same_as(stream)) {
            used.push(stream.clone());
        }
    }

    /// Checks that `stream` and the buffers live on this rank's device.
    fn check_placement(&self, stream: &Stream, buffers: &[(&str, &Device)]) -> Result<()> {
        let mine = self.device.id();
        let mut used = self.used.borrow_mut();
        if !used.iter().any(|s| s.same_as(stream)) {
            used.push(stream.clone());
        }
        if stream.device().id() != mine {
            return Err(Error::invalid(
                format!(
                    "a stream of device {} for rank {} on device {mine}",
                    stream.device().id(),
                    self.rank
                ),
                "a stream of the rank's own device",
            ));
        }
        for (what, d) in buffers {
            if d.id() != mine {
                return Err(Error::invalid(
                    format!(
                        "{what} on device {} for rank {} on device {mine}",
                        d.id(),
                        self.rank
                    ),
                    "buffers of the rank's own device",
                ));
            }
        }
        Ok(())
    }

    fn check_reducible<T: CommElement>(&self, op: ReduceOp) -> Result<()> {
        let int16_or_bf16 = T::DTYPE == ascend_sys::HCCL_DATA_TYPE_INT16
            || T::DTYPE == ascend_sys::HCCL_DATA_TYPE_BFP16;
        if !T::REDUCIBLE || (op == ReduceOp::Prod && int16_or_bf16) {
            return Err(Error::invalid(
                format!("a {op:?} reduction of {}", std::any::type_name::<T>()),
                "i8, i16, i32, i64, f16, bf16 or f32 (and no Prod for i16 and bf16), as A2/A3 reduce",
            ));
        }
        Ok(())
    }

    /// The rank's function table, with its device's context bound on this thread.
    fn bound_api(&self) -> Result<&'static ascend_sys::Api> {
        self.device.inner.bind()?;
        Ok(self.device.inner.api)
    }

    /// `recv[i] = op over ranks of send[i]`, folded in rank order. `send` and `recv` have the
    /// same length on every rank.
    pub fn all_reduce<T: CommElement>(
        &self,
        stream: &Stream,
        send: &impl DeviceSlice<T>,
        recv: &mut impl DeviceSliceMut<T>,
        op: ReduceOp,
    ) -> Result<()> {
        self.check_reducible::<T>(op)?;
        self.check_placement(stream, &[("send", send.device()), ("recv", recv.device())])?;
        same_len("all_reduce recv", recv.len(), send.len())?;
        let (s, r) = (send.device_ptr(), recv.device_ptr_mut());
        stream.track(&[read_access(send), write_access(recv)], || {
            self.bound_api().and_then(|api| {
                // SAFETY: device buffers of `len` elements on this rank's device, kept alive
                // (and unused by others) by the use tracking until the stream has run the op.
                unsafe {
                    c_call!(
                        api,
                        HcclAllReduce(
                            s as _,
                            r as _,
                            send.len() as u64,
                            T::DTYPE,
                            op.raw(),
                            self.raw,
                            stream.raw(),
                        )
                    )
                }
            })
        })
    }

    /// `recv` is every rank's `send`, in rank order: `recv.len() == send.len() · size`.
    pub fn all_gather<T: CommElement>(
        &self,
        stream: &Stream,
        send: &impl DeviceSlice<T>,
        recv: &mut impl DeviceSliceMut<T>,
    ) -> Result<()> {
        self.check_placement(stream, &[("send", send.device()), ("recv", recv.device())])?;
        let want = crate::error::elements("all_gather recv", &[send.len(), self.size as usize])?;
        same_len("all_gather recv", recv.len(), want)?;
        let (s, r) = (send.device_ptr(), recv.device_ptr_mut());
        stream.track(&[read_access(send), write_access(recv)], || {
            self.bound_api().and_then(|api| {
                // SAFETY: as in `all_reduce`, with `recv` holding `size` times `send`.
                unsafe {
                    c_call!(
                        api,
                        HcclAllGather(
                            s as _,
                            r as _,
                            send.len() as u64,
                            T::DTYPE,
                            self.raw,
                            stream.raw(),
                        )
                    )
                }
            })
        })
    }

    /// Rank `r` gets the reduction of every rank's `r`-th block of `send`:
    /// `send.len() == recv.len() · size`.
    pub fn reduce_scatter<T: CommElement>(
        &self,
        stream: &Stream,
        send: &impl DeviceSlice<T>,
        recv: &mut impl DeviceSliceMut<T>,
        op: ReduceOp,
    ) -> Result<()> {
        self.check_reducible::<T>(op)?;
        self.check_placement(stream, &[("send", send.device()), ("recv", recv.device())])?;
        let want =
            crate::error::elements("reduce_scatter send", &[recv.len(), self.size as usize])?;
        same_len("reduce_scatter send", send.len(), want)?;
        let (s, r) = (send.device_ptr(), recv.device_ptr_mut());
        stream.track(&[read_access(send), write_access(recv)], || {
            self.bound_api().and_then(|api| {
                // SAFETY: as in `all_reduce`, with `send` holding `size` times `recv`.
                unsafe {
                    c_call!(
                        api,
                        HcclReduceScatter(
                            s as _,
                            r as _,
                            recv.len() as u64,
                            T::DTYPE,
                            op.raw(),
                            self.raw,
                            stream.raw(),
                        )
                    )
                }
            })
        })
    }

    /// Every rank's `buf` becomes rank `root`'s.
    pub fn broadcast<T: CommElement>(
        &self,
        stream: &Stream,
        buf: &mut impl DeviceSliceMut<T>,
        root: u32,
    ) -> Result<()> {
        self.check_placement(stream, &[("buf", buf.device())])?;
        if root >= self.size {
            return Err(Error::invalid(
                format!("broadcast root {root} of {} ranks", self.size),
                "a root below the rank count",
            ));
        }
        let (len, p) = (buf.len(), buf.device_ptr_mut());
        stream.track(&[write_access(buf)], || {
            self.bound_api().and_then(|api| {
                // SAFETY: a device buffer of `len` elements on this rank's device.
                unsafe {
                    c_call!(
                        api,
                        HcclBroadcast(p as _, len as u64, T::DTYPE, root, self.raw, stream.raw())
                    )
                }
            })
        })
    }

    /// Sends `layout.send_counts[j]` elements (from `send_displs[j]`) to each rank `j`, and
    /// receives `recv_counts[i]` elements from each rank `i` at `recv_displs[i]`.
    pub fn all_to_all_v<T: CommElement>(
        &self,
        stream: &Stream,
        send: &impl DeviceSlice<T>,
        recv: &mut impl DeviceSliceMut<T>,
        layout: &AllToAllV,
    ) -> Result<()> {
        self.check_placement(stream, &[("send", send.device()), ("recv", recv.device())])?;
        let n = self.size as usize;
        let parts = [
            ("send", &layout.send_counts, &layout.send_displs, send.len()),
            ("recv", &layout.recv_counts, &layout.recv_displs, recv.len()),
        ];
        for (what, counts, displs, len) in parts {
            if counts.len() != n || displs.len() != n {
                return Err(Error::invalid(
                    format!(
                        "{what} counts/displacements of lengths {}/{}",
                        counts.len(),
                        displs.len()
                    ),
                    format!("one per rank ({n})"),
                ));
            }
            for (j, (&c, &d)) in counts.iter().zip(displs.iter()).enumerate() {
                if d.checked_add(c).is_none_or(|end| end > len as u64) {
                    return Err(Error::invalid(
                        format!(
                            "{what} part {j}: displacement {d} + count {c} in a buffer of {len}"
                        ),
                        "every part inside its buffer",
                    ));
                }
            }
        }
        let (s, r) = (send.device_ptr(), recv.device_ptr_mut());
        stream.track(&[read_access(send), write_access(recv)], || {
            self.bound_api().and_then(|api| {
                // SAFETY: the count and displacement arrays hold one u64 per rank and are read
                // during the call; every part lies inside its device buffer (checked above).
                unsafe {
                    c_call!(
                        api,
                        HcclAlltoAllV(
                            s as _,
                            layout.send_counts.as_ptr().cast(),
                            layout.send_displs.as_ptr().cast(),
                            T::DTYPE,
                            r as _,
                            layout.recv_counts.as_ptr().cast(),
                            layout.recv_displs.as_ptr().cast(),
                            T::DTYPE,
                            self.raw,
                            stream.raw(),
                        )
                    )
                }
            })
        })
    }

    /// Sends `buf` to rank `peer`, which must [`recv`](Self::recv) as many elements.
    pub fn send<T: CommElement>(
        &self,
        stream: &Stream,
        buf: &impl DeviceSlice<T>,
        peer: u32,
    ) -> Result<()> {
        let side = PeerBuffer {
            ptr: buf.device_ptr(),
            len: buf.len(),
            access: read_access(buf),
            device: buf.device(),
        };
        self.peer_transfer::<T>(stream, side, peer, true)
    }

    /// Receives into `buf` what rank `peer` [`send`](Self::send)s.
    pub fn recv<T: CommElement>(
        &self,
        stream: &Stream,
        buf: &mut impl DeviceSliceMut<T>,
        peer: u32,
    ) -> Result<()> {
        let ptr = buf.device_ptr_mut();
        let side = PeerBuffer {
            ptr,
            len: buf.len(),
            access: write_access(buf),
            device: buf.device(),
        };
        self.peer_transfer::<T>(stream, side, peer, false)
    }

    /// `HcclSend` (`send`) or `HcclRecv` of `buf` with rank `peer`.
    fn peer_transfer<T: CommElement>(
        &self,
        stream: &Stream,
        buf: PeerBuffer<'_>,
        peer: u32,
        send: bool,
    ) -> Result<()> {
        self.check_peer(peer)?;
        self.check_placement(stream, &[("buf", buf.device)])?;
        stream.track(&[buf.access], || {
            let api = self.bound_api()?;
            // Both take (buffer, count, type, peer, comm, stream).
            let f = if send {
                c_fn!(api, HcclSend)?
            } else {
                c_fn!(api, HcclRecv)?
            };
            // SAFETY: a device buffer of `len` elements on this rank's device, kept alive (and
            // unused by others) by the use tracking until the stream has run the transfer.
            f.check(unsafe {
                (f.ptr())(
                    buf.ptr as _,
                    buf.len as u64,
                    T::DTYPE,
                    peer,
                    self.raw,
                    stream.raw(),
                )
            })
        })
    }

    /// Orders `stream` after every rank's work queued before its barrier.
    pub fn barrier(&self, stream: &Stream) -> Result<()> {
        self.check_placement(stream, &[])?;
        self.bound_api().and_then(|api| {
            // SAFETY: a live communicator and a stream of its device.
            unsafe { c_call!(api, HcclBarrier(self.raw, stream.raw())) }
        })
    }

    fn check_peer(&self, peer: u32) -> Result<()> {
        if peer >= self.size || peer == self.rank {
            return Err(Error::invalid(
                format!("peer {peer} for rank {} of {}", self.rank, self.size),
                "another rank below the rank count",
            ));
        }
        Ok(())
    }
}

/// The buffer of one side of a point-to-point transfer.
struct PeerBuffer<'a> {
    ptr: u64,
    len: usize,
    /// A read (send) or write (receive) of the buffer.
    access: Access<'a>,
    device: &'a Device,
}

fn same_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(Error::invalid(
            format!("{what} of {got} elements"),
            format!("{want} elements"),
        ));
    }
    Ok(())
}

impl Drop for Comm {
    fn drop(&mut self) {
        // The MC2 communicator was split from this one: it goes first.
        drop(self.mc2.take());
        // HCCL must not destroy a communicator with collectives still queued: wait for the
        // streams that queued them (their errors were or will be reported by those streams).
        for stream in self.used.get_mut().drain(..) {
            let _ = stream.synchronize();
        }
        let result = self.bound_api().and_then(|api| {
            // SAFETY: the handle is live, owned by `self`, and no queued work uses it.
            unsafe { c_call!(api, HcclCommDestroy(self.raw)) }
        });
        if let Err(e) = result {
            drop_errors::record(e);
        }
    }
}
