//! The HCCL entry points (communicator management and collectives) over [`crate::operators::hccl`].

use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ascend_sys::{
    ACL_ERROR_RT_INTERNAL_ERROR, ACL_ERROR_RT_TASK_TIMEOUT, HCCL_COMM_CONFIG_MAGIC_WORD,
    HCCL_COMM_CONFIG_NOT_SET, HCCL_E_INTERNAL, HCCL_E_PTR, HCCL_E_REMOTE, HCCL_E_TIMEOUT,
    HCCL_SUCCESS, HcclComm, HcclCommConfig, HcclDataType, HcclReduceOp, HcclResult, HcclRootInfo,
    StaticSymbols, aclrtStream,
};

use super::context::current;
use super::state::machine;
use super::stream::for_submit;
use crate::base::error::SimError;
use crate::base::error::panic_text;
use crate::base::error_msg::set_recent;
use crate::operators::hccl::fault;
use crate::operators::hccl::reduce::{element_size, reduce_into, reducible};
use crate::operators::hccl::{
    Comm, Contribution, HcclError, HcclResultOf, Origin, ROOT_MAGIC, Settings, Use, new_root,
    root_of,
};
use crate::rules::violation_text;
use crate::runtime::task::{Abort, Task};

/// Runs an HCCL entry point's body: errors and panics become the return code and the
/// thread's recent-error message.
fn hccl_guard(api: &'static str, body: impl FnOnce() -> HcclResultOf<()>) -> HcclResult {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => HCCL_SUCCESS,
        Ok(Err(e)) => {
            set_recent(&format!("{api}: {}", e.message));
            e.code
        }
        Err(p) => {
            set_recent(&format!(
                "{api}: internal error in ascend-sim (please report): {}",
                panic_text(&*p)
            ));
            HCCL_E_INTERNAL
        }
    }
}

/// A violation of HCCL rule `id` (see `rules/hccl.rs`), as `HCCL_E_PARA`.
fn broke(id: &str, found: impl std::fmt::Display) -> HcclError {
    HcclError::para(violation_text(id, found))
}

fn from_sim(e: SimError) -> HcclError {
    HcclError::para(e.message)
}

fn comms() -> &'static Mutex<HashMap<u64, Arc<Comm>>> {
    static COMMS: OnceLock<Mutex<HashMap<u64, Arc<Comm>>>> = OnceLock::new();
    COMMS.get_or_init(Default::default)
}

/// Handles are distinct non-null values, never reused, that no pointer check mistakes for
/// memory.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(0x4843_0000_0000_0001);

fn resolve(comm: HcclComm) -> HcclResultOf<Arc<Comm>> {
    comms()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(comm as u64))
        .cloned()
        .ok_or_else(|| {
            HcclError::new(
                HCCL_E_PTR,
                format!("{comm:p} is not a live communicator; expected one from HcclCommInit*"),
            )
        })
}

/// The rank on `device` of the live communicator whose `HcclGetCommName` is `name`.
pub(super) fn comm_named(name: &str, device: usize) -> Option<Arc<Comm>> {
    let all = comms().lock().unwrap_or_else(|p| p.into_inner());
    all.values()
        .find(|c| c.device == device && c.name() == name)
        .cloned()
}

/// The `hcclBufferSize` (MB) that the live communicator `name` on the calling thread's device
/// was configured with, if any.
pub(super) fn configured_buffer_mb(name: &str) -> Option<u32> {
    let device = current().ok()?.device;
    comm_named(name, device)?.settings().buffer_mb
}

/// # Safety
/// `ptr` is null or valid for a write of `T`.
unsafe fn write_out<T>(ptr: *mut T, value: T, what: &str) -> HcclResultOf<()> {
    if ptr.is_null() {
        return Err(HcclError::new(HCCL_E_PTR, format!("{what} is NULL")));
    }
    // SAFETY: non-null, and valid for a write per the C contract.
    unsafe { ptr.write(value) };
    Ok(())
}

unsafe extern "C" fn HcclGetRootInfo(root_info: *mut HcclRootInfo) -> HcclResult {
    hccl_guard("HcclGetRootInfo", || {
        current().map_err(from_sim)?;
        let mut info = HcclRootInfo {
            internal: [0; ascend_sys::HCCL_ROOT_INFO_BYTES as usize],
        };
        let id = new_root().to_le_bytes();
        for (dst, src) in info.internal.iter_mut().zip(ROOT_MAGIC.iter().chain(&id)) {
            *dst = *src as c_char;
        }
        // SAFETY: the caller passes storage for one HcclRootInfo.
        unsafe { write_out(root_info, info, "rootInfo") }
    })
}

unsafe extern "C" fn HcclCommInitRootInfo(
    n_ranks: u32,
    root_info: *const HcclRootInfo,
    rank: u32,
    comm: *mut HcclComm,
) -> HcclResult {
    hccl_guard("HcclCommInitRootInfo", || {
        // SAFETY: per the C contract.
        unsafe { init_root_info(n_ranks, root_info, rank, Settings::default(), comm) }
    })
}

unsafe extern "C" fn HcclCommInitRootInfoConfig(
    n_ranks: u32,
    root_info: *const HcclRootInfo,
    rank: u32,
    config: *const HcclCommConfig,
    comm: *mut HcclComm,
) -> HcclResult {
    hccl_guard("HcclCommInitRootInfoConfig", || {
        // SAFETY: `config` is null or a configuration per the C contract.
        let settings = unsafe { read_config(config) }?;
        // SAFETY: per the C contract.
        unsafe { init_root_info(n_ranks, root_info, rank, settings, comm) }
    })
}

/// `HcclCommInitRootInfo[Config]`: joins rank `rank` of the root info's communicator.
///
/// # Safety
/// `root_info` and `comm` are null or valid per the C contract.
unsafe fn init_root_info(
    n_ranks: u32,
    root_info: *const HcclRootInfo,
    rank: u32,
    settings: Settings,
    comm: *mut HcclComm,
) -> HcclResultOf<()> {
    if root_info.is_null() || comm.is_null() {
        return Err(HcclError::new(HCCL_E_PTR, "rootInfo or comm is NULL"));
    }
    // SAFETY: non-null, and a whole HcclRootInfo per the C contract.
    let bytes = unsafe { &(*root_info).internal };
    let raw: Vec<u8> = bytes[..16].iter().map(|&c| c as u8).collect();
    if &raw[..8] != ROOT_MAGIC {
        return Err(HcclError::para(
            "rootInfo was not filled by HcclGetRootInfo; expected the blob rank 0 got",
        ));
    }
    let root = u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes"));
    let device = current().map_err(from_sim)?.device;
    check_name_free(&settings, device)?;
    let c = Comm::init(root, n_ranks, rank, device)?.with_settings(settings);
    // SAFETY: checked non-null above; one HcclComm per the C contract.
    unsafe { write_out(comm, register(c), "comm") }
}

/// Registers `c` and returns its handle.
fn register(c: Comm) -> HcclComm {
    let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    comms()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(handle, Arc::new(c));
    handle as HcclComm
}

unsafe extern "C" fn HcclCommInitAll(
    ndev: u32,
    devices: *mut i32,
    comms: *mut HcclComm,
) -> HcclResult {
    hccl_guard("HcclCommInitAll", || {
        if devices.is_null() || comms.is_null() {
            return Err(HcclError::new(HCCL_E_PTR, "devices or comms is NULL"));
        }
        if ndev == 0 {
            return Err(broke("hccl.init-all-devices", "ndev 0"));
        }
        // SAFETY: non-null, and `ndev` device ids per the C contract.
        let ids = unsafe { std::slice::from_raw_parts(devices, ndev as usize) };
        let machine = machine().map_err(from_sim)?;
        let mut seen: Vec<usize> = Vec::with_capacity(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            let found = |what: String| {
                broke(
                    "hccl.init-all-devices",
                    format!("devices[{i}] = {id}: {what}"),
                )
            };
            machine
                .device(i64::from(id))
                .map_err(|e| found(e.message))?;
            if let Some(j) = seen.iter().position(|&d| d == id as usize) {
                return Err(found(format!("the device of rank {j} again")));
            }
            seen.push(id as usize);
        }
        for (i, c) in Comm::init_all(&seen).into_iter().enumerate() {
            // SAFETY: `comms` holds `ndev` handles per the C contract; `i < ndev`.
            unsafe { write_out(comms.add(i), register(c), "comms") }?;
        }
        Ok(())
    })
}

/// Reads a communicator configuration: its header (rule `hccl.comm-config-header`) and the
/// version-2 fields its `size` covers (rule `hccl.comm-config-fields`; a field left at
/// `HCCL_COMM_CONFIG_NOT_SET`, or an empty name, keeps HCCL's default).
///
/// # Safety
/// `config` is null or points to at least `size` bytes of configuration.
unsafe fn read_config(config: *const HcclCommConfig) -> HcclResultOf<Settings> {
    let rule = "hccl.comm-config-header";
    if config.is_null() {
        return Err(broke(rule, "config is NULL"));
    }
    // SAFETY: non-null, and the caller's configuration starts with the header.
    let (size, magic, version) =
        unsafe { ((*config).size, (*config).magicWord, (*config).version) };
    if magic != HCCL_COMM_CONFIG_MAGIC_WORD || version == 0 || size < 24 {
        return Err(broke(
            rule,
            format!("size {size}, magicWord {magic:#x}, version {version}"),
        ));
    }
    let fields = "hccl.comm-config-fields";
    let mut settings = Settings::default();
    if size >= std::mem::offset_of!(HcclCommConfig, hcclCommName) {
        // SAFETY: `size` covers both 32-bit fields.
        let (mb, det) = unsafe { ((*config).hcclBufferSize, (*config).hcclDeterministic) };
        settings.buffer_mb = match mb {
            0 => return Err(broke(fields, "hcclBufferSize 0 MB")),
            HCCL_COMM_CONFIG_NOT_SET => None,
            mb => Some(mb),
        };
        settings.deterministic = match det {
            0 | 1 => Some(det == 1),
            HCCL_COMM_CONFIG_NOT_SET => None,
            other => return Err(broke(fields, format!("hcclDeterministic {other}"))),
        };
    }
    if size >= std::mem::size_of::<HcclCommConfig>() {
        // SAFETY: `size` covers the name.
        let name = unsafe { &(*config).hcclCommName };
        let len = name.iter().position(|&c| c == 0).ok_or_else(|| {
            broke(
                fields,
                format!("hcclCommName of {} bytes without a NUL", name.len()),
            )
        })?;
        let bytes: Vec<u8> = name[..len].iter().map(|&c| c as u8).collect();
        settings.name = (len > 0).then(|| String::from_utf8_lossy(&bytes).into_owned());
    }
    Ok(settings)
}

/// A configured name must not be one a live communicator on `device` already has: the MC2
/// operators find their communicator by name (rule `hccl.comm-name-unique`).
fn check_name_free(settings: &Settings, device: usize) -> HcclResultOf<()> {
    match &settings.name {
        Some(name) if comm_named(name, device).is_some() => Err(broke(
            "hccl.comm-name-unique",
            format!("hcclCommName {name:?}, the name of a live communicator on device {device}"),
        )),
        _ => Ok(()),
    }
}

unsafe extern "C" fn HcclCreateSubCommConfig(
    comm: *mut HcclComm,
    rank_num: u32,
    rank_ids: *mut u32,
    sub_comm_id: u64,
    sub_comm_rank_id: u32,
    config: *mut HcclCommConfig,
    sub_comm: *mut HcclComm,
) -> HcclResult {
    hccl_guard("HcclCreateSubCommConfig", || {
        if comm.is_null() || sub_comm.is_null() || (rank_ids.is_null() && rank_num > 0) {
            return Err(HcclError::new(
                HCCL_E_PTR,
                "comm, rankIds or subComm is NULL",
            ));
        }
        // SAFETY: `config` is null or a configuration per the C contract.
        let settings = unsafe { read_config(config) }?;
        // SAFETY: non-null, one handle per the C contract.
        let parent = resolve(unsafe { *comm })?;
        let ids = if rank_num == 0 {
            &[][..]
        } else {
            // SAFETY: non-null, and `rankNum` ranks per the C contract.
            unsafe { std::slice::from_raw_parts(rank_ids, rank_num as usize) }
        };
        let rule = "hccl.subcomm-members";
        let found = |what: String| {
            broke(
                rule,
                format!("rankIds {ids:?}, subCommRankId {sub_comm_rank_id}: {what}"),
            )
        };
        if ids.is_empty() {
            return Err(found("no ranks".into()));
        }
        if let Some(&r) = ids.iter().find(|&&r| r >= parent.size()) {
            return Err(found(format!(
                "rank {r} of a {}-rank parent",
                parent.size()
            )));
        }
        if (1..ids.len()).any(|i| ids[..i].contains(&ids[i])) {
            return Err(found("a rank twice".into()));
        }
        if ids.get(sub_comm_rank_id as usize) != Some(&parent.rank) {
            return Err(found(format!("the caller is parent rank {}", parent.rank)));
        }
        let origin = Origin::Split {
            parent: parent.group_id(),
            id: sub_comm_id,
        };
        check_name_free(&settings, parent.device)?;
        let root = root_of(origin, ids, rule)?;
        let c =
            Comm::init(root, rank_num, sub_comm_rank_id, parent.device)?.with_settings(settings);
        // SAFETY: checked non-null above; one HcclComm per the C contract.
        unsafe { write_out(sub_comm, register(c), "subComm") }
    })
}

/// The ranks of a rank table: `(rank_id, device_id)` per device, in file order.
fn rank_table(path: &std::path::Path) -> Result<Vec<(u32, usize)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let number = |v: &serde_json::Value, what: &str| -> Result<u64, String> {
        // Rank tables write numbers as strings.
        v.as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{what} {v}, expected a decimal string"))
    };
    let servers = json["server_list"]
        .as_array()
        .ok_or("no server_list array")?;
    let mut ranks = Vec::new();
    for server in servers {
        for device in server["device"]
            .as_array()
            .ok_or("a server without a device array")?
        {
            let rank = number(&device["rank_id"], "rank_id")?;
            let id = number(&device["device_id"], "device_id")?;
            ranks.push((rank as u32, id as usize));
        }
    }
    Ok(ranks)
}

unsafe extern "C" fn HcclCommInitClusterInfo(
    cluster_info: *const c_char,
    rank: u32,
    comm: *mut HcclComm,
) -> HcclResult {
    hccl_guard("HcclCommInitClusterInfo", || {
        // SAFETY: per the C contract.
        unsafe { init_cluster_info(cluster_info, rank, Settings::default(), comm) }
    })
}

unsafe extern "C" fn HcclCommInitClusterInfoConfig(
    cluster_info: *const c_char,
    rank: u32,
    config: *mut HcclCommConfig,
    comm: *mut HcclComm,
) -> HcclResult {
    hccl_guard("HcclCommInitClusterInfoConfig", || {
        // SAFETY: `config` is null or a configuration per the C contract.
        let settings = unsafe { read_config(config) }?;
        // SAFETY: per the C contract.
        unsafe { init_cluster_info(cluster_info, rank, settings, comm) }
    })
}

/// `HcclCommInitClusterInfo[Config]`: joins rank `rank` of the rank table's communicator.
///
/// # Safety
/// `cluster_info` is null or NUL-terminated, `comm` null or valid, per the C contract.
unsafe fn init_cluster_info(
    cluster_info: *const c_char,
    rank: u32,
    settings: Settings,
    comm: *mut HcclComm,
) -> HcclResultOf<()> {
    if cluster_info.is_null() || comm.is_null() {
        return Err(HcclError::new(HCCL_E_PTR, "clusterInfo or comm is NULL"));
    }
    let rule = "hccl.rank-table";
    // SAFETY: non-null; read up to the documented 4096 bytes, stopping at the NUL.
    let bytes: Vec<u8> = (0..4096)
        .map(|i| unsafe { *cluster_info.add(i) } as u8)
        .take_while(|&b| b != 0)
        .collect();
    if bytes.len() == 4096 {
        return Err(broke(rule, "a path of 4096 bytes or more without its NUL"));
    }
    let path = std::path::PathBuf::from(String::from_utf8_lossy(&bytes).into_owned());
    let found = |what: String| broke(rule, format!("{}: {what}", path.display()));
    let table = rank_table(&path).map_err(&found)?;
    let mut ids: Vec<u32> = table.iter().map(|&(r, _)| r).collect();
    ids.sort_unstable();
    if ids.iter().enumerate().any(|(i, &r)| r != i as u32) {
        return Err(found(format!(
            "rank_ids {ids:?}, expected 0..{} each once",
            ids.len()
        )));
    }
    let Some(&(_, want)) = table.iter().find(|&&(r, _)| r == rank) else {
        return Err(found(format!("no rank_id {rank}")));
    };
    let device = current().map_err(from_sim)?.device;
    if device != want {
        return Err(found(format!(
            "rank {rank} is on device {want}; the caller's device is {device}"
        )));
    }
    check_name_free(&settings, device)?;
    let canonical = std::fs::canonicalize(&path).map_err(|e| found(e.to_string()))?;
    let root = root_of(Origin::RankTable(canonical), &ids, rule)?;
    let c = Comm::init(root, ids.len() as u32, rank, device)?.with_settings(settings);
    // SAFETY: checked non-null above; one HcclComm per the C contract.
    unsafe { write_out(comm, register(c), "comm") }
}

unsafe extern "C" fn HcclCommDestroy(comm: HcclComm) -> HcclResult {
    hccl_guard("HcclCommDestroy", || {
        let removed = comms()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(comm as u64));
        // Queued ops keep their Arc: the rank leaves when the last of them has run.
        removed.map(drop).ok_or_else(|| {
            HcclError::new(HCCL_E_PTR, format!("{comm:p} is not a live communicator"))
        })
    })
}

unsafe extern "C" fn HcclGetRankSize(comm: HcclComm, rank_size: *mut u32) -> HcclResult {
    hccl_guard("HcclGetRankSize", || {
        let c = resolve(comm)?;
        // SAFETY: per the C contract.
        unsafe { write_out(rank_size, c.size(), "rankSize") }
    })
}

unsafe extern "C" fn HcclGetRankId(comm: HcclComm, rank: *mut u32) -> HcclResult {
    hccl_guard("HcclGetRankId", || {
        let c = resolve(comm)?;
        // SAFETY: per the C contract.
        unsafe { write_out(rank, c.rank, "rank") }
    })
}

unsafe extern "C" fn HcclGetCommName(comm: HcclComm, name: *mut c_char) -> HcclResult {
    hccl_guard("HcclGetCommName", || {
        let c = resolve(comm)?;
        if name.is_null() {
            return Err(HcclError::new(HCCL_E_PTR, "commName is NULL"));
        }
        let text = c.name();
        let len = text
            .len()
            .min(ascend_sys::COMM_NAME_MAX_LENGTH as usize - 1);
        // SAFETY: the caller passes COMM_NAME_MAX_LENGTH bytes; we write at most that many.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), name, len);
            name.add(len).write(0);
        }
        Ok(())
    })
}

unsafe extern "C" fn HcclGetCommAsyncError(comm: HcclComm, error: *mut HcclResult) -> HcclResult {
    hccl_guard("HcclGetCommAsyncError", || {
        let c = resolve(comm)?;
        // SAFETY: per the C contract.
        unsafe { write_out(error, c.async_error(), "asyncError") }
    })
}

unsafe extern "C" fn HcclGetErrorString(code: HcclResult) -> *const c_char {
    let name = ascend_sys::hccl_result_name(code).unwrap_or("unknown HcclResult");
    // Interned so the pointer stays valid, as the C API promises.
    static NAMES: OnceLock<Mutex<HashMap<HcclResult, std::ffi::CString>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    names
        .entry(code)
        .or_insert_with(|| std::ffi::CString::new(name).unwrap_or_default())
        .as_ptr()
}

/// Reads `len` bytes of this rank's device memory at `addr`.
fn read_device(addr: u64, len: usize, device: usize, what: &str) -> HcclResultOf<Vec<u8>> {
    let m = map_rank_memory(addr, len, device, what)?;
    // SAFETY: `map_device` checked that `len` bytes lie inside a live allocation it keeps
    // alive while `m` lives.
    Ok(unsafe { std::slice::from_raw_parts(m.ptr(), len) }.to_vec())
}

fn write_device(addr: u64, data: &[u8], device: usize, what: &str) -> HcclResultOf<()> {
    let m = map_rank_memory(addr, data.len(), device, what)?;
    // SAFETY: as in `read_device`; `data` is host memory, distinct from the mapped block.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), m.ptr(), data.len()) };
    Ok(())
}

fn map_rank_memory(
    addr: u64,
    len: usize,
    device: usize,
    what: &str,
) -> HcclResultOf<crate::runtime::memory::Mapped> {
    if len == 0 {
        return Ok(crate::runtime::memory::Mapped::pageable(
            std::ptr::NonNull::<u8>::dangling().as_ptr(),
        ));
    }
    if !crate::runtime::memory::is_device_address(addr)
        || crate::runtime::memory::device_of(addr) != device
    {
        return Err(broke(
            "hccl.element-aligned",
            format!("{what} {addr:#x}, not device memory of device {device}"),
        ));
    }
    crate::ffi::state::machine()
        .and_then(|m| m.map_device(addr, len))
        .map_err(|e| HcclError::para(format!("{what}: {}", e.message)))
}

/// The element size of `dtype`, or a parameter error.
fn size_of_type(dtype: HcclDataType) -> HcclResultOf<usize> {
    element_size(dtype).ok_or_else(|| {
        HcclError::para(format!(
            "data type {dtype} is not moved by HCCL on A2/A3; expected an integer type, fp16, \
             bf16, fp32 or fp64"
        ))
    })
}

fn bytes(count: u64, size: usize, what: &str) -> HcclResultOf<usize> {
    usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(size))
        .ok_or_else(|| HcclError::para(format!("{what} count {count} overflows the address space")))
}

/// Validates the communicator and stream and queues `run` on the stream. What `run` returns
/// fails the stream (timeouts as ACL_ERROR_RT_TASK_TIMEOUT) and is kept for
/// `HcclGetCommAsyncError`.
fn enqueue(
    api: &'static str,
    comm: HcclComm,
    stream: aclrtStream,
    run: impl FnOnce(&Comm, &Abort) -> HcclResultOf<()> + Send + 'static,
) -> HcclResultOf<()> {
    let c = resolve(comm)?;
    let (s, device) = for_submit(stream).map_err(from_sim)?;
    if device != c.device {
        return Err(broke(
            "hccl.stream-of-rank-device",
            format!(
                "a stream of device {device} for rank {} on device {}",
                c.rank, c.device
            ),
        ));
    }
    c.claim(Use::Collectives).map_err(|was| {
        HcclError::para(violation_text(
            "moe-distribute.exclusive-comm",
            format!("{api} on a communicator that ran {was}"),
        ))
    })?;
    s.submit(Task::work(api, move |abort| {
        run(&c, abort).map_err(|e| {
            c.record_failure(&e);
            let code = if e.code == HCCL_E_TIMEOUT {
                ACL_ERROR_RT_TASK_TIMEOUT
            } else {
                ACL_ERROR_RT_INTERNAL_ERROR
            };
            let name = ascend_sys::hccl_result_name(e.code).unwrap_or("HcclResult");
            SimError::new(code, format!("{name}: {}", e.message))
        })
    }))
    .map_err(from_sim)?;
    Ok(())
}

/// A collective over one part per rank: each rank sends `send_len` bytes at `send` and the
/// ranks' parts, in rank order, become `output(rank, parts)` written at `recv`.
struct Collective {
    api: &'static str,
    signature: String,
    send: u64,
    send_len: usize,
    recv: u64,
    /// Whether this rank contributes data (broadcast: only the root).
    contributes: bool,
    /// An all-gather, whose parts a fault can damage (see [`fault::damage_all_gather`]).
    all_gather: bool,
}

fn run_collective(
    c: Collective,
    comm: HcclComm,
    stream: aclrtStream,
    output: impl FnOnce(u32, &[Arc<Contribution>]) -> HcclResultOf<Vec<u8>> + Send + 'static,
) -> HcclResultOf<()> {
    let Collective {
        api,
        signature,
        send,
        send_len,
        recv,
        contributes,
        all_gather,
    } = c;
    let seq = resolve(comm)?.next_collective();
    enqueue(api, comm, stream, move |comm, abort| {
        let data = if contributes {
            read_device(send, send_len, comm.device, "sendBuf")?
        } else {
            Vec::new()
        };
        let parts = if all_gather {
            fault::damage_all_gather(comm.rank, comm.size() as usize, data)
        } else {
            vec![data]
        };
        let all = comm.exchange(
            seq,
            Contribution {
                signature,
                parts,
                expects: Vec::new(),
            },
            abort,
        )?;
        let out = output(comm.rank, &all)?;
        write_device(recv, &out, comm.device, "recvBuf")
    })
}

fn check_reduce(dtype: HcclDataType, op: HcclReduceOp) -> HcclResultOf<usize> {
    reducible(dtype, op).map_err(|found| broke("hccl.reduce-type-op", found))?;
    size_of_type(dtype)
}

/// Checks that the buffers of a `len`-byte operation are non-NULL and aligned to `size`.
fn check_ptrs(ptrs: &[(*const c_void, &str)], len: usize, size: usize) -> HcclResultOf<()> {
    if len == 0 {
        return Ok(());
    }
    for &(p, what) in ptrs {
        if p.is_null() {
            return Err(HcclError::new(HCCL_E_PTR, format!("{what} is NULL")));
        }
        if p as usize % size != 0 {
            return Err(broke(
                "hccl.element-aligned",
                format!("{what} {p:p} for {size}-byte elements"),
            ));
        }
    }
    Ok(())
}

fn fold_parts(
    parts: &[Arc<Contribution>],
    range: std::ops::Range<usize>,
    dtype: HcclDataType,
    op: HcclReduceOp,
) -> Vec<u8> {
    let mut acc = parts[0].parts[0][range.clone()].to_vec();
    for p in &parts[1..] {
        reduce_into(&mut acc, &p.parts[0][range.clone()], dtype, op);
    }
    acc
}

unsafe extern "C" fn HcclAllReduce(
    send_buf: *mut c_void,
    recv_buf: *mut c_void,
    count: u64,
    data_type: HcclDataType,
    op: HcclReduceOp,
    comm: HcclComm,
    stream: aclrtStream,
) -> HcclResult {
    hccl_guard("HcclAllReduce", || {
        let size = check_reduce(data_type, op)?;
        let len = bytes(count, size, "AllReduce")?;
        check_ptrs(
            &[(send_buf, "sendBuf"), (recv_buf.cast_const(), "recvBuf")],
            len,
            size,
        )?;
        let c = Collective {
            api: "HcclAllReduce",
            signature: format!("AllReduce(count {count}, type {data_type}, op {op})"),
            send: send_buf as u64,
            send_len: len,
            recv: recv_buf as u64,
            contributes: true,
            all_gather: false,
        };
        run_collective(c, comm, stream, move |_, all| {
            Ok(fold_parts(all, 0..len, data_type, op))
        })
    })
}

unsafe extern "C" fn HcclReduceScatter(
    send_buf: *mut c_void,
    recv_buf: *mut c_void,
    recv_count: u64,
    data_type: HcclDataType,
    op: HcclReduceOp,
    comm: HcclComm,
    stream: aclrtStream,
) -> HcclResult {
    hccl_guard("HcclReduceScatter", || {
        let size = check_reduce(data_type, op)?;
        let chunk = bytes(recv_count, size, "ReduceScatter")?;
        let ranks = resolve(comm)?.size() as usize;
        let len = chunk
            .checked_mul(ranks)
            .ok_or_else(|| HcclError::para("ReduceScatter: recvCount × ranks overflows"))?;
        check_ptrs(
            &[(send_buf, "sendBuf"), (recv_buf.cast_const(), "recvBuf")],
            len,
            size,
        )?;
        let c = Collective {
            api: "HcclReduceScatter",
            signature: format!("ReduceScatter(recvCount {recv_count}, type {data_type}, op {op})"),
            send: send_buf as u64,
            send_len: len,
            recv: recv_buf as u64,
            contributes: true,
            all_gather: false,
        };
        run_collective(c, comm, stream, move |rank, all| {
            let start = rank as usize * chunk;
            Ok(fold_parts(all, start..start + chunk, data_type, op))
        })
    })
}

unsafe extern "C" fn HcclAllGather(
    send_buf: *mut c_void,
    recv_buf: *mut c_void,
    send_count: u64,
    data_type: HcclDataType,
    comm: HcclComm,
    stream: aclrtStream,
) -> HcclResult {
    hccl_guard("HcclAllGather", || {
        let size = size_of_type(data_type)?;
        let len = bytes(send_count, size, "AllGather")?;
        check_ptrs(
            &[(send_buf, "sendBuf"), (recv_buf.cast_const(), "recvBuf")],
            len,
            size,
        )?;
        let c = Collective {
            api: "HcclAllGather",
            signature: format!("AllGather(sendCount {send_count}, type {data_type})"),
            send: send_buf as u64,
            send_len: len,
            recv: recv_buf as u64,
            contributes: true,
            all_gather: true,
        };
        run_collective(c, comm, stream, move |me, all| {
            let mut out = Vec::with_capacity(len * all.len());
            for (from, p) in all.iter().enumerate() {
                // One part for every receiver, or one per receiver (a damaged one).
                let part = p.parts.get(me as usize).unwrap_or(&p.parts[0]);
                if part.len() != len {
                    return Err(HcclError::new(
                        HCCL_E_REMOTE,
                        format!(
                            "AllGather: {} of the {len} bytes from rank {from} arrived; \
                             expected the whole part",
                            part.len()
                        ),
                    ));
                }
                out.extend_from_slice(part);
            }
            Ok(out)
        })
    })
}

unsafe extern "C" fn HcclBroadcast(
    buf: *mut c_void,
    count: u64,
    data_type: HcclDataType,
    root: u32,
    comm: HcclComm,
    stream: aclrtStream,
) -> HcclResult {
    hccl_guard("HcclBroadcast", || {
        let size = size_of_type(data_type)?;
        let len = bytes(count, size, "Broadcast")?;
        check_ptrs(&[(buf, "buf")], len, size)?;
        let c = resolve(comm)?;
        if root >= c.size() {
            return Err(HcclError::para(format!(
                "root {root} of a {}-rank communicator; expected root < {}",
                c.size(),
                c.size()
            )));
        }
        let co = Collective {
            api: "HcclBroadcast",
            signature: format!("Broadcast(count {count}, type {data_type}, root {root})"),
            send: buf as u64,
            send_len: len,
            recv: buf as u64,
            contributes: c.rank == root,
            all_gather: false,
        };
        run_collective(co, comm, stream, move |_, all| {
            Ok(all[root as usize].parts[0].clone())
        })
    })
}

unsafe extern "C" fn HcclBarrier(comm: HcclComm, stream: aclrtStream) -> HcclResult {
    hccl_guard("HcclBarrier", || {
        let c = Collective {
            api: "HcclBarrier",
            signature: "Barrier".into(),
            send: 0,
            send_len: 0,
            recv: 0,
            contributes: false,
            all_gather: false,
        };
        run_collective(c, comm, stream, |_, _| Ok(Vec::new()))
    })
}

/// Reads `n` host `uint64_t` values (counts or displacements).
///
/// # Safety
/// `ptr` is null or valid for `n` reads.
unsafe fn host_u64s(ptr: *const c_void, n: usize, what: &str) -> HcclResultOf<Vec<u64>> {
    if ptr.is_null() {
        return Err(HcclError::new(HCCL_E_PTR, format!("{what} is NULL")));
    }
    // SAFETY: valid for `n` reads per the C contract (one value per rank).
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u64>(), n) }.to_vec())
}

/// Byte ranges `displ..displ + count` of `size`-byte elements, checked.
fn ranges(
    counts: &[u64],
    displs: &[u64],
    size: usize,
    what: &str,
) -> HcclResultOf<Vec<(usize, usize)>> {
    counts
        .iter()
        .zip(displs)
        .map(|(&c, &d)| {
            let start = bytes(d, size, what)?;
            let len = bytes(c, size, what)?;
            start
                .checked_add(len)
                .map(|_| (start, len))
                .ok_or_else(|| HcclError::para(format!("{what}: displacement + count overflows")))
        })
        .collect()
}

unsafe extern "C" fn HcclAlltoAllV(
    send_buf: *const c_void,
    send_counts: *const c_void,
    sdispls: *const c_void,
    send_type: HcclDataType,
    recv_buf: *const c_void,
    recv_counts: *const c_void,
    rdispls: *const c_void,
    recv_type: HcclDataType,
    comm: HcclComm,
    stream: aclrtStream,
) -> HcclResult {
    hccl_guard("HcclAlltoAllV", || {
        let c = resolve(comm)?;
        let n = c.size() as usize;
        if send_type != recv_type {
            return Err(broke(
                "hccl.alltoallv-one-type",
                format!("sendType {send_type}, recvType {recv_type}"),
            ));
        }
        let size = size_of_type(send_type)?;
        // SAFETY: host arrays of one value per rank, per the C contract.
        let (sc, sd, rc, rd) = unsafe {
            (
                host_u64s(send_counts, n, "sendCounts")?,
                host_u64s(sdispls, n, "sdispls")?,
                host_u64s(recv_counts, n, "recvCounts")?,
                host_u64s(rdispls, n, "rdispls")?,
            )
        };
        let sends = ranges(&sc, &sd, size, "send")?;
        let recvs = ranges(&rc, &rd, size, "recv")?;
        let any_send = sends.iter().any(|r| r.1 > 0);
        let any_recv = recvs.iter().any(|r| r.1 > 0);
        check_ptrs(&[(send_buf, "sendBuf")], usize::from(any_send), size)?;
        check_ptrs(&[(recv_buf, "recvBuf")], usize::from(any_recv), size)?;
        if any_send && any_recv && send_buf == recv_buf {
            return Err(broke(
                "hccl.alltoallv-distinct-buffers",
                format!("both at {send_buf:p}"),
            ));
        }
        let seq = c.next_collective();
        let (send, recv) = (send_buf as u64, recv_buf as u64);
        enqueue("HcclAlltoAllV", comm, stream, move |comm, abort| {
            let mut parts = Vec::with_capacity(n);
            for (j, &(start, len)) in sends.iter().enumerate() {
                let what = format!("sendBuf part for rank {j}");
                parts.push(read_device(send + start as u64, len, comm.device, &what)?);
            }
            fault::damage_all_to_all(comm.rank, &mut parts);
            let mine = Contribution {
                signature: format!("AlltoAllV(type {send_type})"),
                parts,
                expects: recvs.iter().map(|r| r.1).collect(),
            };
            let all = comm.exchange(seq, mine, abort)?;
            // Every rank checks every pair, so a mismatch fails all ranks alike.
            for (j, dest) in all.iter().enumerate() {
                for (i, src) in all.iter().enumerate() {
                    if src.parts[j].len() != dest.expects[i] {
                        return Err(broke(
                            "hccl.alltoallv-counts-match",
                            format!(
                                "rank {j} expects {} elements from rank {i}, which sends {}",
                                dest.expects[i] / size,
                                src.parts[j].len() / size
                            ),
                        ));
                    }
                }
            }
            let me = comm.rank as usize;
            for (i, &(start, _)) in recvs.iter().enumerate() {
                write_device(
                    recv + start as u64,
                    &all[i].parts[me],
                    comm.device,
                    "recvBuf",
                )?;
            }
            Ok(())
        })
    })
}

fn check_peer(c: &Comm, peer: u32, what: &str) -> HcclResultOf<()> {
    if peer >= c.size() || peer == c.rank {
        return Err(HcclError::para(format!(
            "{what} {peer} from rank {} of {}; expected another rank below {}",
            c.rank,
            c.size(),
            c.size()
        )));
    }
    Ok(())
}

/// One side of a point-to-point transfer, as `HcclSend` and `HcclRecv` take it.
struct PeerTransfer {
    buf: *const c_void,
    count: u64,
    data_type: HcclDataType,
    peer: u32,
    comm: HcclComm,
    /// `HcclSend` (else `HcclRecv`).
    send: bool,
}

impl PeerTransfer {
    /// Checks the arguments and takes the transfer's place in the pair's order: its bytes, the
    /// device address and its index among this pair's transfers in that direction.
    fn check(&self) -> HcclResultOf<(usize, u64, u64)> {
        let (what, buf, peer) = if self.send {
            ("Send", "sendBuf", "destRank")
        } else {
            ("Recv", "recvBuf", "srcRank")
        };
        let size = size_of_type(self.data_type)?;
        let len = bytes(self.count, size, what)?;
        check_ptrs(&[(self.buf, buf)], len, size)?;
        let c = resolve(self.comm)?;
        check_peer(&c, self.peer, peer)?;
        let index = c.next_p2p(self.peer, self.send);
        Ok((len, self.buf as u64, index))
    }
}

unsafe extern "C" fn HcclSend(
    send_buf: *mut c_void,
    count: u64,
    data_type: HcclDataType,
    dest_rank: u32,
    comm: HcclComm,
    stream: aclrtStream,
) -> HcclResult {
    hccl_guard("HcclSend", || {
        let (len, send, index) = PeerTransfer {
            buf: send_buf.cast_const(),
            count,
            data_type,
            peer: dest_rank,
            comm,
            send: true,
        }
        .check()?;
        enqueue("HcclSend", comm, stream, move |comm, _| {
            let data = read_device(send, len, comm.device, "sendBuf")?;
            comm.post(dest_rank, index, data)
        })
    })
}

unsafe extern "C" fn HcclRecv(
    recv_buf: *mut c_void,
    count: u64,
    data_type: HcclDataType,
    src_rank: u32,
    comm: HcclComm,
    stream: aclrtStream,
) -> HcclResult {
    hccl_guard("HcclRecv", || {
        let (len, recv, index) = PeerTransfer {
            buf: recv_buf.cast_const(),
            count,
            data_type,
            peer: src_rank,
            comm,
            send: false,
        }
        .check()?;
        enqueue("HcclRecv", comm, stream, move |comm, abort| {
            let data = comm.take(src_rank, index, abort)?;
            if data.len() != len {
                return Err(HcclError::para(format!(
                    "HcclRecv #{index} from rank {src_rank} expects {len} bytes, the send carried \
                     {}; expected matching counts and types",
                    data.len()
                )));
            }
            write_device(recv, &data, comm.device, "recvBuf")
        })
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.HcclGetRootInfo = Some(HcclGetRootInfo);
    s.HcclCommInitRootInfo = Some(HcclCommInitRootInfo);
    s.HcclCommInitRootInfoConfig = Some(HcclCommInitRootInfoConfig);
    s.HcclCommInitAll = Some(HcclCommInitAll);
    s.HcclCreateSubCommConfig = Some(HcclCreateSubCommConfig);
    s.HcclCommInitClusterInfo = Some(HcclCommInitClusterInfo);
    s.HcclCommInitClusterInfoConfig = Some(HcclCommInitClusterInfoConfig);
    s.HcclCommDestroy = Some(HcclCommDestroy);
    s.HcclGetRankSize = Some(HcclGetRankSize);
    s.HcclGetRankId = Some(HcclGetRankId);
    s.HcclGetCommName = Some(HcclGetCommName);
    s.HcclGetCommAsyncError = Some(HcclGetCommAsyncError);
    s.HcclGetErrorString = Some(HcclGetErrorString);
    s.HcclBarrier = Some(HcclBarrier);
    s.HcclAllReduce = Some(HcclAllReduce);
    s.HcclReduceScatter = Some(HcclReduceScatter);
    s.HcclAllGather = Some(HcclAllGather);
    s.HcclBroadcast = Some(HcclBroadcast);
    s.HcclAlltoAllV = Some(HcclAlltoAllV);
    s.HcclSend = Some(HcclSend);
    s.HcclRecv = Some(HcclRecv);
}
