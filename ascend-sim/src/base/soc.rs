//! The SoC models the simulator can pretend to be, with the facts of the runtime's platform
//! INI files (`cann-api-facts.md` §7.1).

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// The product family of a SoC, which decides rules that differ between generations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocFamily {
    /// Atlas A2 (Ascend 910B).
    A2,
    /// Atlas A3 (Ascend 910_93, one die per device).
    A3,
    /// Ascend 950.
    Ascend950,
}

/// The facts of one SoC model. Sizes are bytes; per-core memories are per cube (AIC) core for
/// L1/L0 and per vector (AIV) core for UB.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SocModel {
    /// `SoC_version`, e.g. `"Ascend910B2"`.
    pub name: &'static str,
    /// Product family.
    pub family: SocFamily,
    /// Cube (AIC) cores.
    pub aic_cores: u32,
    /// Vector (AIV) cores.
    pub aiv_cores: u32,
    /// Cube clock in MHz.
    pub cube_mhz: u32,
    /// Device memory (HBM) in bytes.
    pub hbm_bytes: u64,
    /// L2 cache in bytes.
    pub l2_bytes: u64,
    /// Unified buffer per vector core.
    pub ub_bytes: u64,
    /// L1 buffer per cube core.
    pub l1_bytes: u64,
    /// L0A buffer per cube core.
    pub l0a_bytes: u64,
    /// L0B buffer per cube core.
    pub l0b_bytes: u64,
    /// L0C buffer per cube core.
    pub l0c_bytes: u64,
    /// `NpuArch` as reported by `ACL_DEV_ATTR_NPU_ARCH`.
    pub npu_arch: i64,
    /// AI CPU cores.
    pub aicpu_cores: u32,
}

/// (name, family, MHz, HBM GiB, L2 MiB); the core counts come from [`ascend_sys::SOC_CORES`].
type Row = (&'static str, SocFamily, u32, u64, u64);

// Ascend910B2C has no memory_size in its INI; it is the same die as 910B2, so 64 GiB is assumed.
const TABLE: &[Row] = &[
    ("Ascend910B1", SocFamily::A2, 1850, 64, 192),
    ("Ascend910B2", SocFamily::A2, 1800, 64, 192),
    ("Ascend910B2C", SocFamily::A2, 1800, 64, 192),
    ("Ascend910B3", SocFamily::A2, 1800, 64, 192),
    ("Ascend910B4", SocFamily::A2, 1500, 32, 96),
    ("Ascend910B4-1", SocFamily::A2, 1500, 32, 168),
    ("Ascend910_9362", SocFamily::A3, 1500, 64, 168),
    ("Ascend910_9372", SocFamily::A3, 1800, 64, 192),
    ("Ascend910_9381", SocFamily::A3, 1800, 64, 192),
    ("Ascend910_9382", SocFamily::A3, 1800, 64, 192),
    ("Ascend910_9391", SocFamily::A3, 1850, 64, 192),
    ("Ascend910_9392", SocFamily::A3, 1850, 64, 192),
    ("Ascend950PR_9599", SocFamily::Ascend950, 1800, 128, 128),
    ("Ascend950DT_9591", SocFamily::Ascend950, 1800, 144, 128),
];

impl SocModel {
    /// The model with `SoC_version` `name`, or `None` for an unknown name.
    pub fn by_name(name: &str) -> Option<SocModel> {
        TABLE
            .iter()
            .find(|row| row.0 == name)
            .map(|&(name, family, mhz, hbm, l2)| {
                let is_950 = family == SocFamily::Ascend950;
                let (aic, aiv) = ascend_sys::soc_cores(name).expect("every SoC has core counts");
                SocModel {
                    name,
                    family,
                    aic_cores: aic,
                    aiv_cores: aiv,
                    cube_mhz: mhz,
                    hbm_bytes: hbm * GIB,
                    l2_bytes: l2 * MIB,
                    ub_bytes: if is_950 { 248 * KIB } else { 192 * KIB },
                    l1_bytes: 512 * KIB,
                    l0a_bytes: 64 * KIB,
                    l0b_bytes: 64 * KIB,
                    l0c_bytes: if is_950 { 256 * KIB } else { 128 * KIB },
                    npu_arch: if is_950 { 3510 } else { 2201 },
                    aicpu_cores: 6,
                }
            })
    }

    /// Every SoC name [`SocModel::by_name`] accepts.
    pub fn names() -> impl Iterator<Item = &'static str> {
        TABLE.iter().map(|row| row.0)
    }

    /// Ascend910B2, the default model.
    pub fn ascend910b2() -> SocModel {
        Self::by_name("Ascend910B2").expect("Ascend910B2 is in the table")
    }

    /// Bytes `aclrtMalloc` reserves for a request of `size` bytes: the A2/A3 rule adds 32 bytes
    /// of padding after rounding up to 32, Ascend 950 only rounds.
    pub fn malloc_reserved(&self, size: u64, pad: bool) -> Option<u64> {
        let rounded = size.checked_add(31)? & !31;
        if pad && self.family != SocFamily::Ascend950 {
            rounded.checked_add(32)
        } else {
            Some(rounded)
        }
    }
}

impl Default for SocModel {
    fn default() -> Self {
        Self::ascend910b2()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_facts_and_malloc_rounding() {
        let b2 = SocModel::default();
        assert_eq!(
            (b2.name, b2.aic_cores, b2.aiv_cores, b2.cube_mhz),
            ("Ascend910B2", 24, 48, 1800)
        );
        assert_eq!(
            (b2.ub_bytes, b2.l1_bytes, b2.l0a_bytes, b2.l0c_bytes),
            (196608, 524288, 65536, 131072)
        );
        let b4 = SocModel::by_name("Ascend910B4").unwrap();
        assert_eq!((b4.hbm_bytes, b4.l2_bytes), (32 << 30, 96 << 20));
        let pr = SocModel::by_name("Ascend950PR_9599").unwrap();
        assert_eq!(
            (pr.npu_arch, pr.ub_bytes, pr.hbm_bytes),
            (3510, 248 * 1024, 128 << 30)
        );
        assert!(SocModel::by_name("Ascend310").is_none());
        assert_eq!(SocModel::names().count(), 14);
        assert!(SocModel::names().all(|n| SocModel::by_name(n).is_some()));
        assert_eq!(b2.malloc_reserved(1, true), Some(64));
        assert_eq!(b2.malloc_reserved(32, true), Some(64));
        assert_eq!(b2.malloc_reserved(33, false), Some(64));
        assert_eq!(pr.malloc_reserved(33, true), Some(64));
        assert_eq!(b2.malloc_reserved(u64::MAX, true), None);
    }
}
