//! Triggers and actions against a mock `OutputPin`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorKind, ErrorType, OutputPin};
use ferrite_targets::actions::{Action, DryRunAction, Event, GpioAction, Rule, Trigger};

/// Records every level it is driven to; fails on demand.
#[derive(Clone, Default)]
struct MockPin {
    levels: Rc<RefCell<Vec<bool>>>,
    fail: bool,
}

#[derive(Debug)]
struct PinError;
impl embedded_hal::digital::Error for PinError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}
impl ErrorType for MockPin {
    type Error = PinError;
}
impl OutputPin for MockPin {
    fn set_low(&mut self) -> Result<(), PinError> {
        if self.fail {
            return Err(PinError);
        }
        self.levels.borrow_mut().push(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), PinError> {
        if self.fail {
            return Err(PinError);
        }
        self.levels.borrow_mut().push(true);
        Ok(())
    }
}

fn rule() -> Rule {
    Rule {
        label: "face".into(),
        min_score: 0.8,
        hold: Duration::from_millis(500),
    }
}

#[test]
fn gpio_fires_holds_and_releases() {
    let pin = MockPin::default();
    let levels = pin.levels.clone();
    let gpio = GpioAction::new(pin, false, "mock").unwrap();
    assert_eq!(*levels.borrow(), [false], "driven inactive at start");
    let mut t = Trigger::new(rule(), vec![Box::new(gpio)]);
    let t0 = Instant::now();
    let ms = |m: u64| t0 + Duration::from_millis(m);
    // Other labels and low scores do not fire.
    assert_eq!(
        t.update(ms(0), [("cat", 0.99), ("face", 0.5)]).unwrap(),
        None
    );
    assert_eq!(
        t.update(ms(100), [("face", 0.9)]).unwrap(),
        Some(Event::Fired)
    );
    assert_eq!(*levels.borrow(), [false, true]);
    // Still seen: no new edge. Gone for less than the hold time: stays on.
    assert_eq!(t.update(ms(200), [("face", 0.85)]).unwrap(), None);
    assert_eq!(t.update(ms(600), []).unwrap(), None);
    assert!(t.is_fired());
    // 500 ms after the last sighting (at 200 ms): released.
    assert_eq!(t.update(ms(700), []).unwrap(), Some(Event::Released));
    assert_eq!(*levels.borrow(), [false, true, false]);
    assert_eq!(t.update(ms(800), []).unwrap(), None);
    // Fires again on the next sighting; shutdown releases.
    assert_eq!(
        t.update(ms(900), [("face", 0.95)]).unwrap(),
        Some(Event::Fired)
    );
    t.shutdown().unwrap();
    assert_eq!(*levels.borrow(), [false, true, false, true, false]);
}

#[test]
fn active_low_pins_invert() {
    let pin = MockPin::default();
    let levels = pin.levels.clone();
    let mut gpio = GpioAction::new(pin, true, "relay").unwrap();
    gpio.fire().unwrap();
    gpio.release().unwrap();
    assert_eq!(*levels.borrow(), [true, false, true]);
}

#[test]
fn pin_errors_are_reported() {
    let pin = MockPin {
        fail: true,
        ..Default::default()
    };
    let e = GpioAction::new(pin, false, "BCM 17")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("GPIO BCM 17: cannot set low"), "{e}");
}

#[test]
fn dry_run_logs_instead_of_acting() {
    let mut d = DryRunAction {
        what: "GPIO 17".into(),
        log: Vec::new(),
    };
    d.fire().unwrap();
    d.release().unwrap();
    assert_eq!(
        d.log,
        [
            "dry run: would switch ON GPIO 17",
            "dry run: would switch OFF GPIO 17"
        ]
    );
}

#[test]
fn without_the_rpi_feature_gpio_says_so() {
    let r = ferrite_targets::actions::rpi_output_pin(17);
    if cfg!(feature = "rpi") {
        // On a machine that is not a Raspberry Pi rppal reports that instead.
        return;
    }
    let e = r.err().unwrap().to_string();
    assert!(
        e.contains("no Raspberry Pi GPIO support") && e.contains("--features rpi"),
        "{e}"
    );
}

#[test]
fn command_action_runs_the_command() {
    let dir = std::env::temp_dir().join(format!("ferrite-cmd-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let mut c = ferrite_targets::actions::CommandAction {
        on_fire: format!("touch {}", dir.display()),
        on_release: None,
    };
    c.fire().unwrap();
    for _ in 0..100 {
        if dir.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dir.exists(), "the command ran");
    let _ = std::fs::remove_file(&dir);
}
