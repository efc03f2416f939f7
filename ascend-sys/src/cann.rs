//! CANN releases and what each one offers, for the calls whose availability differs between the
//! releases we support (8.1.RC1 to 9.x).
//!
//! One place for these facts: the safe layer chooses its calls with them, and the simulator
//! answers as the configured release would. Sources: `cann-api-facts.md` (Errata 6, §5.3).

use std::fmt;

use crate::bindings::{
    ACL_DEV_ATTR_AICORE_CORE_NUM, ACL_DEV_ATTR_AICPU_CORE_NUM, ACL_DEV_ATTR_VECTOR_CORE_NUM,
    aclrtDevAttr,
};

/// The release part of a CANN version: a release candidate (`RC1`) sorts before the final
/// releases of the same major.minor (`0`, `1`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CannRelease {
    /// `RC<n>`.
    Rc(u32),
    /// A final release's patch number.
    Patch(u32),
}

/// A CANN release, e.g. `8.1.RC1` or `8.5.0`, as `aclsysGetCANNVersion` reports it.
///
/// ```
/// use ascend_sys::CannVersion;
/// let v: CannVersion = "8.1.RC1".parse().unwrap();
/// assert!(v < CannVersion::V8_2_RC1 && !v.has_device_info());
/// assert_eq!(v.to_string(), "8.1.RC1");
/// assert!("8.5.0".parse::<CannVersion>().unwrap().has_cube_core_attr());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CannVersion {
    /// Major version (8, 9, ...).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Release candidate or patch.
    pub release: CannRelease,
}

impl CannVersion {
    /// 8.1.RC1: no `aclrtGetDeviceInfo`, no public kernel-binary API.
    pub const V8_1_RC1: CannVersion = CannVersion::rc(8, 1, 1);
    /// 8.2.RC1: `aclrtGetDeviceInfo` (attributes 1/101/201), kernel binaries and
    /// `aclrtKernelArgs*` + `aclrtLaunchKernelWithConfig`.
    pub const V8_2_RC1: CannVersion = CannVersion::rc(8, 2, 1);
    /// 8.3.RC1.
    pub const V8_3_RC1: CannVersion = CannVersion::rc(8, 3, 1);
    /// 8.5.0: every `aclrtDevAttr`, `ACL_DEV_ATTR_CUBE_CORE_NUM` included.
    pub const V8_5_0: CannVersion = CannVersion::patch(8, 5, 0);
    /// 9.0.0: `aclrtBinaryLoadFromData`, `aclrtLaunchKernelV2`, `aclrtLaunchKernelWithHostArgs`.
    pub const V9_0_0: CannVersion = CannVersion::patch(9, 0, 0);

    /// `major.minor.RC<rc>`.
    pub const fn rc(major: u32, minor: u32, rc: u32) -> Self {
        CannVersion {
            major,
            minor,
            release: CannRelease::Rc(rc),
        }
    }

    /// `major.minor.patch`.
    pub const fn patch(major: u32, minor: u32, patch: u32) -> Self {
        CannVersion {
            major,
            minor,
            release: CannRelease::Patch(patch),
        }
    }

    /// Whether `aclrtGetDeviceInfo` exists (8.2 on).
    pub fn has_device_info(&self) -> bool {
        *self >= Self::V8_2_RC1
    }

    /// Whether `aclrtGetDeviceInfo` answers `attr`: 8.2 and 8.3 list only AICPU/AICORE/VECTOR
    /// core counts (1/101/201); 8.5 on list every attribute.
    pub fn has_device_attr(&self, attr: aclrtDevAttr) -> bool {
        if !self.has_device_info() {
            return false;
        }
        *self >= Self::V8_5_0
            || matches!(
                attr,
                ACL_DEV_ATTR_AICPU_CORE_NUM
                    | ACL_DEV_ATTR_AICORE_CORE_NUM
                    | ACL_DEV_ATTR_VECTOR_CORE_NUM
            )
    }

    /// Whether `ACL_DEV_ATTR_CUBE_CORE_NUM` exists (8.5 on).
    pub fn has_cube_core_attr(&self) -> bool {
        *self >= Self::V8_5_0
    }

    /// Whether the runtime's kernel-binary API exists: `aclrtBinaryLoadFromFile`,
    /// `aclrtBinaryGetFunction`, `aclrtKernelArgs*`, `aclrtLaunchKernelWithConfig`,
    /// `aclrtLaunchKernel` (8.2 on).
    pub fn has_kernel_binaries(&self) -> bool {
        *self >= Self::V8_2_RC1
    }

    /// Whether the 9.x launch additions exist: `aclrtBinaryLoadFromData`,
    /// `aclrtLaunchKernelV2`, `aclrtLaunchKernelWithHostArgs`.
    pub fn has_binary_from_data(&self) -> bool {
        *self >= Self::V9_0_0
    }
}

impl fmt::Display for CannVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.release {
            CannRelease::Rc(n) => write!(f, "{}.{}.RC{n}", self.major, self.minor),
            CannRelease::Patch(n) => write!(f, "{}.{}.{n}", self.major, self.minor),
        }
    }
}

/// A version string that is not `major.minor.RC<n>` or `major.minor.patch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadCannVersion(pub String);

impl fmt::Display for BadCannVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CANN version {:?} is not understood; expected major.minor.RC<n> or \
             major.minor.patch, e.g. 8.1.RC1 or 8.5.0",
            self.0
        )
    }
}

impl std::error::Error for BadCannVersion {}

impl std::str::FromStr for CannVersion {
    type Err = BadCannVersion;

    /// Parses `8.1.RC1` or `8.5.0`; a further dotted suffix (`8.2.RC1.alpha002`) is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCannVersion(s.to_string());
        let mut parts = s.trim().split('.');
        let number = |p: Option<&str>| -> Result<u32, BadCannVersion> {
            p.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
                .ok_or_else(bad)
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        let third = parts.next().ok_or_else(bad)?;
        let release = match third
            .strip_prefix("RC")
            .or_else(|| third.strip_prefix("rc"))
        {
            Some(n) => CannRelease::Rc(number(Some(n))?),
            None => CannRelease::Patch(number(Some(third))?),
        };
        Ok(CannVersion {
            major,
            minor,
            release,
        })
    }
}

/// Cube (AIC) and vector (AIV) cores of the SoCs we know, by `aclrtGetSocName`'s
/// `SoC_version` (runtime platform INI files, `cann-api-facts.md` §7.1).
pub const SOC_CORES: &[(&str, u32, u32)] = &[
    ("Ascend910B1", 24, 48),
    ("Ascend910B2", 24, 48),
    ("Ascend910B2C", 24, 48),
    ("Ascend910B3", 20, 40),
    ("Ascend910B4", 20, 40),
    ("Ascend910B4-1", 20, 40),
    ("Ascend910_9362", 20, 40),
    ("Ascend910_9372", 20, 40),
    ("Ascend910_9381", 24, 48),
    ("Ascend910_9382", 24, 48),
    ("Ascend910_9391", 24, 48),
    ("Ascend910_9392", 24, 48),
    ("Ascend950PR_9599", 36, 72),
    ("Ascend950DT_9591", 36, 72),
];

/// `(cube, vector)` cores of the SoC named `soc`, or `None` for a SoC not in [`SOC_CORES`].
/// Text after the name (the simulator's ` (ascend-sim)`) is ignored.
pub fn soc_cores(soc: &str) -> Option<(u32, u32)> {
    let name = soc.split_whitespace().next().unwrap_or("");
    SOC_CORES
        .iter()
        .find(|row| row.0 == name)
        .map(|&(_, aic, aiv)| (aic, aiv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{ACL_DEV_ATTR_CUBE_CORE_NUM, ACL_DEV_ATTR_NPU_ARCH};

    #[test]
    fn parses_orders_and_prints() {
        let v = |s: &str| s.parse::<CannVersion>().unwrap();
        assert_eq!(v("8.1.RC1"), CannVersion::V8_1_RC1);
        assert_eq!(v("8.2.RC1.alpha002"), CannVersion::V8_2_RC1);
        assert_eq!(v("9.0.0"), CannVersion::V9_0_0);
        assert!(v("8.5.RC2") < v("8.5.0") && v("8.5.0") < v("8.5.1"));
        assert!(v("8.3.RC1") < v("8.5.0") && v("8.5.1") < v("9.0.0"));
        for s in ["8.1.RC1", "8.5.0", "10.0.3"] {
            assert_eq!(v(s).to_string(), s);
        }
        for bad in ["", "8", "8.1", "8.x.0", "8.1.RCx", "-8.1.0", "8..0"] {
            let e = bad.parse::<CannVersion>().unwrap_err();
            assert!(e.to_string().contains("expected major.minor"), "{e}");
        }
    }

    #[test]
    fn features_by_version() {
        let old = CannVersion::V8_1_RC1;
        assert!(!old.has_device_info() && !old.has_kernel_binaries());
        assert!(!old.has_device_attr(ACL_DEV_ATTR_VECTOR_CORE_NUM));
        for v in [CannVersion::V8_2_RC1, CannVersion::V8_3_RC1] {
            assert!(v.has_device_info() && v.has_kernel_binaries());
            assert!(v.has_device_attr(ACL_DEV_ATTR_AICORE_CORE_NUM));
            assert!(!v.has_device_attr(ACL_DEV_ATTR_CUBE_CORE_NUM));
            assert!(!v.has_device_attr(ACL_DEV_ATTR_NPU_ARCH));
            assert!(!v.has_binary_from_data());
        }
        let v85 = CannVersion::V8_5_0;
        assert!(v85.has_cube_core_attr() && v85.has_device_attr(ACL_DEV_ATTR_NPU_ARCH));
        assert!(!v85.has_binary_from_data() && CannVersion::V9_0_0.has_binary_from_data());
    }

    #[test]
    fn soc_core_table() {
        assert_eq!(soc_cores("Ascend910B2"), Some((24, 48)));
        assert_eq!(soc_cores("Ascend910B4 (ascend-sim)"), Some((20, 40)));
        assert_eq!(soc_cores("Ascend950PR_9599"), Some((36, 72)));
        assert_eq!(soc_cores("Ascend310"), None);
        assert_eq!(soc_cores(""), None);
    }
}
