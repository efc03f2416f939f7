//! aclOpExecutor: what phase one of an operator prepared for phase two.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::objects::TensorDesc;
use super::ops::Planned;
use super::view::TensorView;
use crate::base::cost::{self, OperatorWork};
use crate::base::error::SimResult;
use crate::runtime::counters::Counters;
use crate::runtime::machine::Machine;

/// The operator as a function of its tensors' views (inputs, outputs), bound at launch.
pub(crate) type Run = Arc<dyn Fn(&[TensorView], &[TensorView]) -> SimResult<()> + Send + Sync>;

/// The names of an operator's tensors, in the order of its inputs and outputs, for messages.
#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    pub(crate) inputs: Vec<&'static str>,
    pub(crate) outputs: Vec<&'static str>,
}

/// Binds the tensors (as described at launch) on `machine`, each checked to lie in one live
/// allocation, and runs the operator over their views on `device`, whose counters then get
/// the run's bytes and MACs and its modelled time ([`crate::base::cost::operator`]).
pub(crate) fn execute(
    machine: &Machine,
    device: usize,
    names: &Names,
    run: &Run,
    inputs: &[TensorDesc],
    outputs: &[TensorDesc],
) -> SimResult<()> {
    // This run's own counts: other streams of the device may run operators at the same time.
    let counted = Counters::default();
    let result = (|| {
        let bind = |names: &[&'static str], descs: &[TensorDesc]| {
            descs
                .iter()
                .zip(names)
                .map(|(d, name)| TensorView::bind(machine, &counted, name, d))
                .collect::<SimResult<Vec<_>>>()
        };
        let inputs = bind(&names.inputs, inputs)?;
        let outputs = bind(&names.outputs, outputs)?;
        run(&inputs, &outputs)
    })();
    if let Some(dev) = machine.devices.get(device) {
        let c = counted.snapshot();
        let work = OperatorWork {
            read: c.aclnn_read_bytes,
            written: c.aclnn_write_bytes,
            macs: c.aclnn_macs,
            vector_ops: 0,
        };
        dev.counters
            .aclnn_done(&c, cost::operator(&dev.soc, &work).total());
    }
    result
}

pub(crate) struct Executor {
    pub(crate) op: &'static str,
    pub(crate) device: usize,
    /// Bytes of device workspace phase two must receive.
    pub(crate) workspace: u64,
    inputs: Mutex<Vec<TensorDesc>>,
    outputs: Mutex<Vec<TensorDesc>>,
    pub(crate) names: Names,
    pub(crate) run: Run,
    repeatable: AtomicBool,
}

impl Executor {
    /// The executor of `op`'s plan on `device`.
    pub(crate) fn new(op: &'static str, device: usize, planned: Planned) -> Executor {
        Executor {
            op,
            device,
            workspace: planned.workspace,
            inputs: Mutex::new(planned.inputs),
            outputs: Mutex::new(planned.outputs),
            names: planned.names,
            run: planned.run,
            repeatable: AtomicBool::new(false),
        }
    }

    pub(crate) fn set_repeatable(&self) {
        self.repeatable.store(true, Ordering::Release);
    }

    pub(crate) fn is_repeatable(&self) -> bool {
        self.repeatable.load(Ordering::Acquire)
    }

    /// The tensors as they are bound now, for one launch.
    pub(crate) fn snapshot(&self) -> (Vec<TensorDesc>, Vec<TensorDesc>) {
        let inputs = self
            .inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let outputs = self
            .outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (inputs, outputs)
    }

    /// Rebinds input or output `index` to a new device address (repeatable executors).
    pub(crate) fn rebind(&self, output: bool, index: usize, addr: u64) -> Result<(), usize> {
        let list = if output { &self.outputs } else { &self.inputs };
        let mut list = list.lock().unwrap_or_else(|p| p.into_inner());
        let count = list.len();
        let tensor = list.get_mut(index).ok_or(count)?;
        tensor.data = addr;
        Ok(())
    }
}
