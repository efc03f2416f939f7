//! aclOpExecutor: what phase one of an operator prepared for phase two.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::objects::TensorDesc;
use crate::base::error::SimResult;
use crate::runtime::machine::Machine;

/// Runs the operator over the tensors (inputs, outputs) as bound at launch, on the machine
/// whose memory holds them.
pub(crate) type Run =
    Arc<dyn Fn(&Machine, &[TensorDesc], &[TensorDesc]) -> SimResult<()> + Send + Sync>;

pub(crate) struct Executor {
    pub(crate) op: &'static str,
    pub(crate) device: usize,
    /// Bytes of device workspace phase two must receive.
    pub(crate) workspace: u64,
    inputs: Mutex<Vec<TensorDesc>>,
    outputs: Mutex<Vec<TensorDesc>>,
    pub(crate) run: Run,
    repeatable: AtomicBool,
}

impl Executor {
    pub(crate) fn new(
        op: &'static str,
        device: usize,
        workspace: u64,
        inputs: Vec<TensorDesc>,
        outputs: Vec<TensorDesc>,
        run: Run,
    ) -> Executor {
        Executor {
            op,
            device,
            workspace,
            inputs: Mutex::new(inputs),
            outputs: Mutex::new(outputs),
            run,
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
