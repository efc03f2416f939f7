//! Which devices the simulator has: set by [`configure`] or read from the environment.

use crate::base::soc::SocModel;
use ascend_sys::CannVersion;

/// Environment variable with the number of simulated devices (default 1).
pub const DEVICES_VAR: &str = "ASCEND_SIM_DEVICES";
/// Environment variable with the SoC name of every simulated device (default `Ascend910B2`).
pub const SOC_VAR: &str = "ASCEND_SIM_SOC";
/// Environment variable with the CANN release the simulator answers as, e.g. `8.1.RC1` or
/// `8.5.0` (default [`DEFAULT_CANN_VERSION`]).
pub const CANN_VERSION_VAR: &str = "ASCEND_SIM_CANN_VERSION";
/// Environment variable with every simulated device's memory (HBM) in bytes, for a machine
/// smaller than the SoC's documented size (default: the SoC's `hbm_bytes`). Allocations beyond
/// it fail with `ACL_ERROR_RT_MEMORY_ALLOCATION`, so a fuzzer or a test can bound the host
/// memory the simulator backs its devices with.
pub const HBM_BYTES_VAR: &str = "ASCEND_SIM_HBM_BYTES";
/// Environment variable that, set to `1`, prints every kernel launch's modelled time by
/// resource to stderr (`[cost] kernel ...`, see [`crate::cost::Estimate::breakdown`]): which
/// resource bounds which launch, for reading a bench's modelled times.
pub const COST_TRACE_VAR: &str = "ASCEND_SIM_COST_TRACE";
/// Environment variable with functions (C names, comma-separated) the simulated CANN leaves
/// out of its function table, as an older or stripped-down installation would: how a test
/// reaches the fallback the library takes when an operator is missing (see
/// [`SimConfig::without_functions`]).
pub const ABSENT_FUNCTIONS_VAR: &str = "ASCEND_SIM_ABSENT_FUNCTIONS";
/// The CANN release the simulator answers as unless told otherwise.
pub const DEFAULT_CANN_VERSION: CannVersion = CannVersion::V9_0_0;
/// Most devices one simulator may have: the fake address layout gives each device 2^48 bytes
/// of address space below bit 56.
pub const MAX_DEVICES: usize = 64;

/// The simulated machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// One entry per device, in device-id order.
    pub devices: Vec<SocModel>,
    /// The CANN release to answer as: functions and device attributes it lacks fail as they
    /// would there (a function it lacks is absent from the function table).
    pub cann_version: CannVersion,
    /// Functions (C names) left out of the function table on top of what the release lacks.
    /// Only the compiled-in table leaves them out: the drop-in CANN libraries
    /// (`ascend-sim-cann`) export every function they implement.
    pub absent_functions: Vec<String>,
}

impl Default for SimConfig {
    /// One Ascend910B2 under [`DEFAULT_CANN_VERSION`].
    fn default() -> Self {
        SimConfig {
            devices: vec![SocModel::ascend910b2()],
            cann_version: DEFAULT_CANN_VERSION,
            absent_functions: Vec::new(),
        }
    }
}

impl SimConfig {
    /// `count` devices of the same model, under [`DEFAULT_CANN_VERSION`]; a count outside 1 to
    /// [`MAX_DEVICES`] is an error (checked before anything is allocated, so an absurd count
    /// cannot abort the process).
    pub fn uniform(soc: SocModel, count: usize) -> Result<Self, String> {
        check_count(count)?;
        Ok(SimConfig {
            devices: vec![soc; count],
            cann_version: DEFAULT_CANN_VERSION,
            absent_functions: Vec::new(),
        })
    }

    /// The same machine with `bytes` of device memory (HBM) on every device instead of the
    /// SoC's documented size; see [`HBM_BYTES_VAR`].
    ///
    /// ```
    /// use ascend_sim::SimConfig;
    /// let small = SimConfig::default().with_hbm_bytes(256 << 20);
    /// assert_eq!(small.devices[0].hbm_bytes, 256 << 20);
    /// ```
    pub fn with_hbm_bytes(mut self, bytes: u64) -> Self {
        for device in &mut self.devices {
            device.hbm_bytes = bytes;
        }
        self
    }

    /// The same machine under CANN release `version`.
    pub fn with_cann_version(self, version: CannVersion) -> Self {
        SimConfig {
            cann_version: version,
            ..self
        }
    }

    /// The same machine with the functions `names` (C names, e.g.
    /// `aclnnMlaPrologV3WeightNzGetWorkspaceSize`) absent from its function table, as on an
    /// installation without them; a name the table does not have fails [`configure`](crate::configure).
    ///
    /// ```
    /// use ascend_sim::SimConfig;
    /// let old = SimConfig::default().without_functions(["aclnnMlaPrologV3WeightNzGetWorkspaceSize"]);
    /// assert_eq!(old.absent_functions.len(), 1);
    /// ```
    pub fn without_functions<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.absent_functions
            .extend(names.into_iter().map(Into::into));
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        check_count(self.devices.len())?;
        match self
            .absent_functions
            .iter()
            .find(|name| !ascend_sys::Api::SYMBOLS.contains(&name.as_str()))
        {
            Some(name) => Err(format!(
                "absent function {name:?} is not in the function table; expected a C name it \
                 has, such as aclnnMlaPrologV3WeightNzGetWorkspaceSize"
            )),
            None => Ok(()),
        }
    }

    /// The configuration described by [`DEVICES_VAR`], [`SOC_VAR`], [`HBM_BYTES_VAR`],
    /// [`CANN_VERSION_VAR`] and [`ABSENT_FUNCTIONS_VAR`], defaults for unset ones.
    pub fn from_env() -> Result<Self, String> {
        let count = match std::env::var(DEVICES_VAR) {
            Ok(v) => parse_device_count(&v)?,
            Err(_) => 1,
        };
        let soc = match std::env::var(SOC_VAR) {
            Ok(name) => SocModel::by_name(name.trim()).ok_or_else(|| {
                let known: Vec<_> = SocModel::names().collect();
                format!("{SOC_VAR}={name:?} is not a known SoC; expected one of {known:?}")
            })?,
            Err(_) => SocModel::ascend910b2(),
        };
        let cann_version = match std::env::var(CANN_VERSION_VAR) {
            Ok(v) => v
                .parse::<CannVersion>()
                .map_err(|e| format!("{CANN_VERSION_VAR}: {e}"))?,
            Err(_) => DEFAULT_CANN_VERSION,
        };
        let absent = match std::env::var(ABSENT_FUNCTIONS_VAR) {
            Ok(v) => v
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(String::from)
                .collect(),
            Err(_) => Vec::new(),
        };
        let config = SimConfig::uniform(soc, count)?
            .with_cann_version(cann_version)
            .without_functions(absent);
        Ok(match std::env::var(HBM_BYTES_VAR) {
            Ok(v) => config.with_hbm_bytes(parse_hbm_bytes(&v)?),
            Err(_) => config,
        })
    }
}

fn check_count(count: usize) -> Result<(), String> {
    if count == 0 || count > MAX_DEVICES {
        return Err(format!(
            "the simulator needs 1 to {MAX_DEVICES} devices, got {count}"
        ));
    }
    Ok(())
}

/// The value of [`DEVICES_VAR`] as a count in 1 to [`MAX_DEVICES`], parsed and range-checked
/// before anything is allocated for it.
fn parse_device_count(value: &str) -> Result<usize, String> {
    let bad =
        || format!("{DEVICES_VAR}={value:?} is not a device count; expected 1 to {MAX_DEVICES}");
    let count = value.trim().parse::<usize>().map_err(|_| bad())?;
    check_count(count).map_err(|_| bad())?;
    Ok(count)
}

/// The value of [`HBM_BYTES_VAR`]: a positive byte count.
fn parse_hbm_bytes(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(format!(
            "{HBM_BYTES_VAR}={value:?} is not a memory size; expected a positive number of bytes"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_or_wrapping_device_counts_are_errors_not_aborts() {
        for value in [
            "1000000000000",
            "4294967297",
            "18446744073709551615",
            "0",
            "65",
            "-1",
            "x",
        ] {
            let message = parse_device_count(value).unwrap_err();
            assert!(message.contains("expected 1 to 64"), "{value}: {message}");
        }
        assert_eq!(parse_device_count(" 64 "), Ok(64));
        assert_eq!(parse_device_count("1"), Ok(1));
        assert!(SimConfig::uniform(SocModel::ascend910b2(), 1_000_000_000_000).is_err());
        assert_eq!(
            SimConfig::uniform(SocModel::ascend910b2(), 2).map(|c| c.devices.len()),
            Ok(2)
        );
    }

    #[test]
    fn absent_functions_must_be_functions_of_the_table() {
        let absent = |name: &str| SimConfig::default().without_functions([name]).validate();
        assert_eq!(absent("aclnnMlaPrologV3WeightNzGetWorkspaceSize"), Ok(()));
        let message = absent("aclnnNoSuchOp").unwrap_err();
        assert!(message.contains("\"aclnnNoSuchOp\""), "{message}");
    }

    #[test]
    fn hbm_sizes_parse_or_name_the_variable() {
        assert_eq!(parse_hbm_bytes(" 268435456 "), Ok(256 << 20));
        for value in ["0", "-1", "1G", "", "18446744073709551616"] {
            let message = parse_hbm_bytes(value).unwrap_err();
            assert!(message.contains(HBM_BYTES_VAR), "{value}: {message}");
        }
    }
}
