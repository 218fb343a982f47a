//! Actions: when a label is seen with at least a minimum score, switch
//! something on; when it has not been seen for the hold time, switch it off.
//!
//! A [`Trigger`] holds the rule and the state; an [`Action`] is what gets
//! switched: a GPIO output through any `embedded_hal::digital::OutputPin`
//! ([`GpioAction`]; Raspberry Pi pins with [`rpi_output_pin`] and the `rpi`
//! feature), a shell command ([`CommandAction`]), or a log line
//! ([`DryRunAction`]).

use std::time::{Duration, Instant};

use embedded_hal::digital::OutputPin;

use crate::Error;

/// When to fire: `label` seen with `score >= min_score`; release once it
/// has not been seen for `hold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub label: String,
    pub min_score: f32,
    pub hold: Duration,
}

/// A state change of a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The label appeared: actions were switched on.
    Fired,
    /// The label was gone for the hold time: actions were switched off.
    Released,
}

/// Something a trigger switches on and off.
pub trait Action {
    /// Switches on (called once per firing).
    fn fire(&mut self) -> Result<(), Error>;
    /// Switches off (called once per release).
    fn release(&mut self) -> Result<(), Error>;
    /// A short description for logs.
    fn describe(&self) -> String;
}

/// Drives a GPIO output: high while fired (low with `active_low`).
pub struct GpioAction<P: OutputPin> {
    pin: P,
    active_low: bool,
    name: String,
}

impl<P: OutputPin> GpioAction<P> {
    /// Wraps `pin` and drives it to the inactive level now.
    pub fn new(mut pin: P, active_low: bool, name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        set(&mut pin, active_low, &name)?;
        Ok(GpioAction {
            pin,
            active_low,
            name,
        })
    }

    /// The pin, back (e.g. to inspect a mock).
    pub fn into_pin(self) -> P {
        self.pin
    }
}

fn set<P: OutputPin>(pin: &mut P, high: bool, name: &str) -> Result<(), Error> {
    let r = if high { pin.set_high() } else { pin.set_low() };
    r.map_err(|e| {
        Error::Action(format!(
            "GPIO {name}: cannot set {}: {:?}",
            if high { "high" } else { "low" },
            embedded_hal::digital::Error::kind(&e)
        ))
    })
}

impl<P: OutputPin> Action for GpioAction<P> {
    fn fire(&mut self) -> Result<(), Error> {
        set(&mut self.pin, !self.active_low, &self.name)
    }
    fn release(&mut self) -> Result<(), Error> {
        set(&mut self.pin, self.active_low, &self.name)
    }
    fn describe(&self) -> String {
        format!("GPIO {}", self.name)
    }
}

/// Runs a shell command (`sh -c`) on firing, and another (optional) on release.
/// The commands run in the background; a command that cannot start is an error.
pub struct CommandAction {
    pub on_fire: String,
    pub on_release: Option<String>,
}

fn spawn(cmd: &str) -> Result<(), Error> {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .spawn()
        .map(|_| ())
        .map_err(|e| Error::Action(format!("cannot run `{cmd}`: {e}")))
}

impl Action for CommandAction {
    fn fire(&mut self) -> Result<(), Error> {
        spawn(&self.on_fire)
    }
    fn release(&mut self) -> Result<(), Error> {
        match &self.on_release {
            Some(c) => spawn(c),
            None => Ok(()),
        }
    }
    fn describe(&self) -> String {
        format!("command `{}`", self.on_fire)
    }
}

/// Logs what it would do (to stderr) and keeps the lines for inspection.
#[derive(Debug, Default)]
pub struct DryRunAction {
    pub what: String,
    pub log: Vec<String>,
}

impl Action for DryRunAction {
    fn fire(&mut self) -> Result<(), Error> {
        let line = format!("dry run: would switch ON {}", self.what);
        eprintln!("{line}");
        self.log.push(line);
        Ok(())
    }
    fn release(&mut self) -> Result<(), Error> {
        let line = format!("dry run: would switch OFF {}", self.what);
        eprintln!("{line}");
        self.log.push(line);
        Ok(())
    }
    fn describe(&self) -> String {
        format!("dry run of {}", self.what)
    }
}

/// A rule, its actions and its state.
pub struct Trigger {
    pub rule: Rule,
    actions: Vec<Box<dyn Action>>,
    /// When the label was last seen while fired (`None`: released).
    last_seen: Option<Instant>,
}

impl Trigger {
    /// A released trigger.
    pub fn new(rule: Rule, actions: Vec<Box<dyn Action>>) -> Self {
        Trigger {
            rule,
            actions,
            last_seen: None,
        }
    }

    /// Whether the actions are currently on.
    pub fn is_fired(&self) -> bool {
        self.last_seen.is_some()
    }

    /// Feeds one frame's detections (`(label, score)` pairs) seen at `now`.
    /// Fires on the first frame with a match, releases on the first frame at
    /// least `hold` after the last match. Every action is called even if an
    /// earlier one fails; the first error is returned.
    pub fn update<'a>(
        &mut self,
        now: Instant,
        detections: impl IntoIterator<Item = (&'a str, f32)>,
    ) -> Result<Option<Event>, Error> {
        let seen = detections
            .into_iter()
            .any(|(l, s)| l == self.rule.label && s >= self.rule.min_score);
        let event = match (seen, self.last_seen) {
            (true, None) => Some(Event::Fired),
            (false, Some(t)) if now.saturating_duration_since(t) >= self.rule.hold => {
                Some(Event::Released)
            }
            _ => None,
        };
        if seen {
            self.last_seen = Some(now);
        } else if event == Some(Event::Released) {
            self.last_seen = None;
        }
        let mut first_err = None;
        if let Some(ev) = event {
            for a in &mut self.actions {
                let r = match ev {
                    Event::Fired => a.fire(),
                    Event::Released => a.release(),
                };
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(event),
        }
    }

    /// Switches everything off if fired (e.g. at exit).
    pub fn shutdown(&mut self) -> Result<(), Error> {
        if self.last_seen.take().is_some() {
            for a in &mut self.actions {
                a.release()?;
            }
        }
        Ok(())
    }
}

/// A Raspberry Pi GPIO output (BCM numbering) through rppal. Without the
/// `rpi` feature this returns [`Error::FeatureDisabled`].
#[cfg(feature = "rpi")]
pub fn rpi_output_pin(bcm: u8) -> Result<rppal::gpio::OutputPin, Error> {
    let gpio = rppal::gpio::Gpio::new()
        .map_err(|e| Error::Action(format!("cannot open the Raspberry Pi GPIO: {e}")))?;
    let pin = gpio
        .get(bcm)
        .map_err(|e| Error::Action(format!("GPIO {bcm}: {e}")))?;
    Ok(pin.into_output_low())
}

/// A Raspberry Pi GPIO output (BCM numbering). This build has no `rpi`
/// feature, so it returns [`Error::FeatureDisabled`].
#[cfg(not(feature = "rpi"))]
pub fn rpi_output_pin(bcm: u8) -> Result<NoPin, Error> {
    let _ = bcm;
    Err(Error::FeatureDisabled {
        feature: "rpi",
        what: "Raspberry Pi GPIO",
    })
}

/// The pin type of builds without the `rpi` feature (never constructed).
#[cfg(not(feature = "rpi"))]
pub enum NoPin {}

#[cfg(not(feature = "rpi"))]
impl embedded_hal::digital::ErrorType for NoPin {
    type Error = core::convert::Infallible;
}

#[cfg(not(feature = "rpi"))]
impl OutputPin for NoPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        match *self {}
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        match *self {}
    }
}
