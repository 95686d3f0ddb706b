//! The temperature guard: reads the GPU sensors every [`SAMPLE_EVERY`] into the run's counters,
//! and with `--gpu-temp-limit` rests a GPU that reaches the limit (it finishes its batches and
//! takes no more) until it is [`RESUME_BELOW`] degrees cooler, before a cloud GPU throttles
//! itself; each change is a notice on screen and in the log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{EventSink, MinerEvent, Pauser};
use crate::telemetry::sensors::GpuSensors;
use crate::work::MiningStats;

/// How often the sensors are read.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// A rested GPU mines again this many degrees below its limit (no flapping at the edge).
pub const RESUME_BELOW: u32 = 5;

/// What the guard decided for one reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardAction {
    Rest,
    Resume,
}

/// Rests a GPU at `limit` °C and resumes it [`RESUME_BELOW`] degrees lower.
#[derive(Clone, Debug)]
pub struct TemperatureGuard {
    limit: u32,
    resting: Vec<usize>,
}

impl TemperatureGuard {
    pub fn new(limit: u32) -> Self {
        TemperatureGuard {
            limit,
            resting: Vec::new(),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The action a reading of `temperature` on device `index` calls for, if any.
    pub fn update(&mut self, index: usize, temperature: u32) -> Option<GuardAction> {
        let resting = self.resting.contains(&index);
        if !resting && temperature >= self.limit {
            self.resting.push(index);
            Some(GuardAction::Rest)
        } else if resting && temperature + RESUME_BELOW <= self.limit {
            self.resting.retain(|&i| i != index);
            Some(GuardAction::Resume)
        } else {
            None
        }
    }
}

/// The sampler thread: reads the sensors every [`SAMPLE_EVERY`] into `stats`, and with a guard
/// rests and resumes GPUs through `pauser`, saying so in `events`. Stops when `stop` is set.
pub fn spawn_sampler(
    sensors: GpuSensors,
    stats: Arc<MiningStats>,
    guard: Option<(TemperatureGuard, Pauser)>,
    events: EventSink,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("wgminer-sensors".into())
        .spawn(move || {
            let mut guard = guard;
            while !stop.load(Ordering::Relaxed) {
                for (index, reading) in sensors.read() {
                    stats.set_sensors(index, reading);
                    let (Some((g, pauser)), Some(t)) = (guard.as_mut(), reading.temperature_c)
                    else {
                        continue;
                    };
                    let label = stats.label_of(index).unwrap_or("gpu");
                    let limit = g.limit();
                    match g.update(index, t) {
                        Some(GuardAction::Rest) => {
                            pauser.set(index, true);
                            stats.set_resting(index, true);
                            events.emit(MinerEvent::Notice(format!(
                                "{label}: {t} °C reached the limit of {limit} °C: resting it until {} °C",
                                limit - RESUME_BELOW
                            )));
                        }
                        Some(GuardAction::Resume) => {
                            pauser.set(index, false);
                            stats.set_resting(index, false);
                            events.emit(MinerEvent::Notice(format!(
                                "{label}: down to {t} °C: mining again"
                            )));
                        }
                        None => {}
                    }
                }
                // Sleep in short steps so a stop is seen promptly.
                let mut slept = Duration::ZERO;
                while slept < SAMPLE_EVERY && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    slept += Duration::from_millis(100);
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_rests_at_the_limit_and_resumes_five_below() {
        let mut g = TemperatureGuard::new(80);
        assert_eq!(g.update(1, 79), None);
        assert_eq!(g.update(1, 80), Some(GuardAction::Rest));
        assert_eq!(g.update(1, 83), None, "already resting");
        assert_eq!(g.update(2, 70), None, "another GPU is not affected");
        assert_eq!(g.update(1, 76), None, "not yet 5 below");
        assert_eq!(g.update(1, 75), Some(GuardAction::Resume));
        assert_eq!(g.update(1, 75), None);
        assert_eq!(g.update(1, 81), Some(GuardAction::Rest));
    }
}
