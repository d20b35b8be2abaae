//! Run-local and task-local storage.
//!
//! [`RunVar`] is one value per run (Trio's `RunVar`): a `static` key whose value lives in the
//! run and vanishes with it. [`TaskLocal`] is one value per task, inherited by children as a
//! snapshot taken when they are spawned (Trio's contextvars behaviour): a child sees its
//! parent's values, and what a child sets stays in the child.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

use super::run::{Runner, not_in_run};
use super::storage::RunValue;
use crate::error::{Error, Result};

/// A variable with one value per run. Declare it as a `static`.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// use trio::lowlevel::RunVar;
/// static HITS: RunVar<u32> = RunVar::with_default("hits", || 0);
/// trio::run(async {
///     HITS.set(HITS.get()? + 1)?;
///     assert_eq!(HITS.get()?, 1);
///     Ok(())
/// })?;
/// // A new run starts from the default again.
/// trio::run(async { assert_eq!(HITS.get()?, 0); Ok(()) })
/// # }
/// ```
pub struct RunVar<T: 'static> {
    name: &'static str,
    default: Option<fn() -> T>,
}

impl<T: 'static> std::fmt::Debug for RunVar<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunVar").field("name", &self.name).finish()
    }
}

impl<T: 'static> RunVar<T> {
    /// A run variable with no default: `get` fails until `set` is called in the run.
    pub const fn new(name: &'static str) -> Self {
        RunVar {
            name,
            default: None,
        }
    }

    /// A run variable whose value starts as `default()` in every run.
    pub const fn with_default(name: &'static str, default: fn() -> T) -> Self {
        RunVar {
            name,
            default: Some(default),
        }
    }

    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// The cell holding this variable's value, initialised from the default if needed.
    fn cell(&self) -> Result<RunValue> {
        let existing = Runner::with_current(|runner| runner.run_values().get(self.key()))
            .ok_or_else(|| not_in_run("RunVar"))?;
        if let Some(cell) = existing {
            return Ok(cell);
        }
        let default = self.default.ok_or_else(|| {
            Error::usage(format!("RunVar {:?} has no value in this run", self.name))
        })?;
        // The default is computed with no runtime borrow held: it may use other run variables.
        let value: RunValue = Rc::new(RefCell::new(Box::new(default())));
        Runner::with_current(|runner| runner.run_values().get_or_insert_default(self.key(), value))
            .ok_or_else(|| not_in_run("RunVar"))
    }

    /// Calls `f` with the value, initialising it from the default if needed.
    ///
    /// `f` may use other run variables; using this same one inside `f` is a `UsageError`.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R> {
        let cell = self.cell()?;
        let mut guard = cell.try_borrow_mut().map_err(|_| self.used_inside_with())?;
        let value = guard
            .downcast_mut::<T>()
            .ok_or_else(|| Error::usage("RunVar value has the wrong type"))?;
        Ok(f(value))
    }

    /// A clone of the value.
    pub fn get(&self) -> Result<T>
    where
        T: Clone,
    {
        self.with(|v| v.clone())
    }

    /// A clone of the value set in this run, or `default` if none was (Trio's
    /// `get(default=...)`): `default` comes before the variable's own default (even one that
    /// [`with`](Self::with) changed), and is not stored.
    pub fn get_or(&self, default: T) -> Result<T>
    where
        T: Clone,
    {
        let existing = Runner::with_current(|runner| runner.run_values().get_set(self.key()))
            .ok_or_else(|| not_in_run("RunVar::get_or"))?;
        match existing {
            Some(cell) => {
                let guard = cell.try_borrow().map_err(|_| self.used_inside_with())?;
                Ok(downcast::<T>(&**guard)?.clone())
            }
            None => Ok(default),
        }
    }

    /// Sets the value for the rest of the run and returns the value it replaced: the one set
    /// earlier in this run, else the default (`None` when there is neither). Setting a
    /// variable inside its own [`with`](Self::with) call is a `UsageError`. To put the old
    /// value back later, use [`set_with_token`](Self::set_with_token) and
    /// [`reset`](Self::reset) (Trio's token API).
    pub fn set(&self, value: T) -> Result<Option<T>> {
        let token = self.set_with_token(value)?;
        // A replaced value still borrowed by a `with` call up the stack stays alive until that
        // call ends, and is not returned.
        Ok(token
            .previous
            .and_then(|cell| Rc::try_unwrap(cell).ok())
            .and_then(|cell| cell.into_inner().downcast::<T>().ok())
            .map(|value| *value))
    }

    /// As [`set`](Self::set) (until [`reset`](Self::reset)), returning a token that holds the
    /// value it replaced (Trio's `set`, which returns a `RunVarToken`). Setting a variable
    /// inside its own [`with`](Self::with) call is a `UsageError`.
    ///
    /// ```
    /// # fn main() -> trio::Result<()> {
    /// use trio::lowlevel::RunVar;
    /// static LEVEL: RunVar<u32> = RunVar::with_default("level", || 1);
    /// trio::run(async {
    ///     let token = LEVEL.set_with_token(5)?;
    ///     assert_eq!(token.previous_value(), Some(1));
    ///     assert_eq!(LEVEL.get()?, 5);
    ///     LEVEL.reset(token)?;
    ///     assert_eq!(LEVEL.get()?, 1);
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn set_with_token(&self, value: T) -> Result<RunVarToken<T>> {
        let current = Runner::with_current(|runner| runner.run_values().get(self.key()))
            .ok_or_else(|| not_in_run("RunVar::set"))?;
        if current
            .as_ref()
            .is_some_and(|cell| cell.try_borrow_mut().is_err())
        {
            return Err(self.used_inside_with());
        }
        // As in Trio, the value replaced is the default when none was set in this run.
        let previous = current.or_else(|| {
            self.default
                .map(|default| -> RunValue { Rc::new(RefCell::new(Box::new(default()))) })
        });
        Runner::with_current(|runner| {
            runner
                .run_values()
                .insert(self.key(), Rc::new(RefCell::new(Box::new(value))))
        })
        .ok_or_else(|| not_in_run("RunVar::set"))?;
        Ok(RunVarToken {
            key: self.key(),
            name: self.name,
            previous,
            _value: PhantomData,
        })
    }

    /// Puts back the value that the [`set_with_token`](Self::set_with_token) which made `token` replaced (none, if
    /// the variable had no value and no default). Trio's `reset`: a token of another variable
    /// is a `UsageError` ("token is not for us"), as is resetting outside a run or inside the
    /// variable's own [`with`](Self::with) call. Trio's "token has already been used" cannot
    /// happen: `reset` takes the token by value.
    pub fn reset(&self, token: RunVarToken<T>) -> Result<()> {
        if token.key != self.key() {
            return Err(Error::usage(format!(
                "RunVar::reset: token is not for us (it is for RunVar {:?}, not {:?})",
                token.name, self.name
            )));
        }
        let current = Runner::with_current(|runner| runner.run_values().get(self.key()))
            .ok_or_else(|| not_in_run("RunVar::reset"))?;
        if current.is_some_and(|cell| cell.try_borrow_mut().is_err()) {
            return Err(self.used_inside_with());
        }
        Runner::with_current(|runner| match token.previous {
            Some(previous) => {
                runner.run_values().insert(self.key(), previous);
            }
            None => {
                runner.run_values().remove(self.key());
            }
        })
        .ok_or_else(|| not_in_run("RunVar::reset"))
    }

    fn used_inside_with(&self) -> Error {
        Error::usage(format!(
            "RunVar {:?} was used inside its own `with` call",
            self.name
        ))
    }
}

fn downcast<T: 'static>(value: &dyn Any) -> Result<&T> {
    value
        .downcast_ref::<T>()
        .ok_or_else(|| Error::usage("RunVar value has the wrong type"))
}

/// What [`RunVar::set_with_token`] returns: the value the `set` replaced, which [`RunVar::reset`] puts
/// back (Trio's `RunVarToken`).
pub struct RunVarToken<T: 'static> {
    key: usize,
    name: &'static str,
    previous: Option<RunValue>,
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> RunVarToken<T> {
    /// A clone of the value the `set` replaced: `None` when the variable had none (no value
    /// set in the run and no default). Trio's `previous_value`.
    pub fn previous_value(&self) -> Option<T>
    where
        T: Clone,
    {
        // A replaced cell is borrowed only by a `with` call that began before the `set`, and
        // `set` refuses to run inside one.
        let cell = self.previous.as_ref()?;
        let guard = cell.try_borrow().ok()?;
        guard.downcast_ref::<T>().cloned()
    }
}

impl<T: 'static> std::fmt::Debug for RunVarToken<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunVarToken")
            .field("var", &self.name)
            .field("has_previous_value", &self.previous.is_some())
            .finish()
    }
}

/// A variable with one value per task, inherited by the tasks it spawns. Declare it as a
/// `static`.
pub struct TaskLocal<T: 'static> {
    name: &'static str,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T: 'static> std::fmt::Debug for TaskLocal<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskLocal")
            .field("name", &self.name)
            .finish()
    }
}

impl<T: 'static> TaskLocal<T> {
    /// A task-local variable; it has no value until a task sets it.
    pub const fn new(name: &'static str) -> Self {
        TaskLocal {
            name,
            _marker: std::marker::PhantomData,
        }
    }

    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// The name given at declaration.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A clone of the current task's value (`None` if neither it nor its ancestors set one at
    /// the time it was spawned). Fails outside a task.
    pub fn get(&self) -> Result<Option<T>>
    where
        T: Clone,
    {
        Runner::with_current_task(|_, task| {
            task.locals
                .borrow()
                .as_ref()
                .and_then(|m| m.get(&self.key()))
                .and_then(|v| v.downcast_ref::<T>())
                .cloned()
        })
        .ok_or_else(|| not_in_run("TaskLocal::get"))
    }

    /// Sets the current task's value; tasks it spawns from now on inherit it.
    pub fn set(&self, value: T) -> Result<()> {
        Runner::with_current_task(|_, task| {
            let mut locals = task.locals.borrow_mut();
            let map = locals.get_or_insert_with(Default::default);
            Rc::make_mut(map).insert(self.key(), Rc::new(value));
        })
        .ok_or_else(|| not_in_run("TaskLocal::set"))
    }
}
