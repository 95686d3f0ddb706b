//! GPU sensors: temperature, power, SM clock, fan and utilisation of NVIDIA GPUs through NVML
//! (loaded at run time: a machine without NVIDIA's driver simply has no readings), matched to
//! wgminer's devices by PCI bus address. The readings go into the run's `MiningStats`, where the
//! status line, both APIs and `/metrics` read them (sampled by `mining::thermal`).

use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::Nvml;

use crate::work::stats::SensorReading;

/// A PCI address, `domain:bus:device.function`, whichever way it was written (wgpu writes
/// `0000:01:00.0`, NVML `00000000:01:00.0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciAddress {
    domain: u32,
    bus: u32,
    device: u32,
    function: u32,
}

impl PciAddress {
    pub fn parse(text: &str) -> Option<PciAddress> {
        let text = text.trim();
        let (rest, function) = text.rsplit_once('.')?;
        let mut parts = rest.rsplitn(3, ':');
        let device = parts.next()?;
        let bus = parts.next()?;
        let domain = parts.next().unwrap_or("0");
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        Some(PciAddress {
            domain: hex(domain)?,
            bus: hex(bus)?,
            device: hex(device)?,
            function: hex(function)?,
        })
    }
}

/// A GPU to watch: wgminer's device index and its PCI address.
#[derive(Clone, Debug)]
pub struct WatchedGpu {
    pub index: usize,
    pub label: String,
    pub pci: PciAddress,
}

/// NVML, opened, with the devices it reports for.
pub struct GpuSensors {
    nvml: Nvml,
    /// wgminer's index, label, NVML's bus id for each matched GPU.
    gpus: Vec<(usize, String, String)>,
}

impl GpuSensors {
    /// Open NVML and match `gpus` to its devices; `Err` says why there will be no readings (no
    /// NVIDIA driver, or none of these GPUs is NVIDIA's): not an error for the run.
    pub fn open(gpus: &[WatchedGpu]) -> Result<GpuSensors, String> {
        // The driver installs only the versioned name; the unversioned one is a dev symlink.
        let nvml = Nvml::builder()
            .lib_path("libnvidia-ml.so.1".as_ref())
            .init()
            .or_else(|_| Nvml::init())
            .map_err(|e| format!("no GPU sensors: NVML unavailable ({e})"))?;
        let count = nvml.device_count().map_err(|e| format!("NVML: {e}"))?;
        let mut matched = Vec::new();
        for i in 0..count {
            let Ok(device) = nvml.device_by_index(i) else {
                continue;
            };
            let Ok(pci) = device.pci_info() else {
                continue;
            };
            let Some(address) = PciAddress::parse(&pci.bus_id) else {
                continue;
            };
            if let Some(gpu) = gpus.iter().find(|g| g.pci == address) {
                matched.push((gpu.index, gpu.label.clone(), pci.bus_id.clone()));
            }
        }
        if matched.is_empty() {
            return Err(format!(
                "no GPU sensors: NVML sees {count} GPU(s), none of them mining here"
            ));
        }
        Ok(GpuSensors {
            nvml,
            gpus: matched,
        })
    }

    /// The devices with readings: (index, label).
    pub fn devices(&self) -> impl Iterator<Item = (usize, &str)> {
        self.gpus.iter().map(|(i, l, _)| (*i, l.as_str()))
    }

    /// One reading per matched GPU; a sensor a GPU lacks (a passively cooled H100 has no fan)
    /// is `None`.
    pub fn read(&self) -> Vec<(usize, SensorReading)> {
        self.gpus
            .iter()
            .filter_map(|(index, _, bus_id)| {
                let d = self.nvml.device_by_pci_bus_id(bus_id.as_str()).ok()?;
                Some((
                    *index,
                    SensorReading {
                        temperature_c: d.temperature(TemperatureSensor::Gpu).ok(),
                        power_w: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
                        sm_clock_mhz: d.clock_info(Clock::SM).ok(),
                        fan_percent: d.fan_speed(0).ok(),
                        utilization_percent: d.utilization_rates().ok().map(|u| u.gpu),
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_from_wgpu_and_nvml_agree() {
        let wgpu = PciAddress::parse("0000:01:00.0").expect("wgpu form");
        let nvml = PciAddress::parse("00000000:01:00.0").expect("nvml form");
        assert_eq!(wgpu, nvml);
        assert_ne!(wgpu, PciAddress::parse("0000:02:00.0").expect("other bus"));
        assert_eq!(
            PciAddress::parse("c1:00.1"),
            Some(PciAddress {
                domain: 0,
                bus: 0xc1,
                device: 0,
                function: 1
            })
        );
        for bad in ["", "nonsense", "0000:zz:00.0", "01:00", "0000:01:00.q"] {
            assert_eq!(PciAddress::parse(bad), None, "{bad}");
        }
    }

    /// Where NVML is absent (this machine, CI) opening says so and nothing fails.
    #[test]
    fn without_nvml_there_are_no_readings_and_no_error() {
        let gpus = [WatchedGpu {
            index: 1,
            label: "gpu1".into(),
            pci: PciAddress::parse("0000:01:00.0").expect("pci"),
        }];
        match GpuSensors::open(&gpus) {
            Err(why) => assert!(why.starts_with("no GPU sensors"), "{why}"),
            // On a machine with an NVIDIA GPU at that address the readings must come back.
            Ok(s) => assert!(!s.read().is_empty()),
        }
    }
}
