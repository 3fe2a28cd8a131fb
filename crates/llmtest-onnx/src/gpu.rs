//! GPU facts for the results (the seeds' VRAM column): device name, driver, total memory,
//! memory used before and after loading the model and the peak while it ran. CUDA is read
//! with cudarc's driver API (loaded at run time; checked for presence first, since cudarc
//! panics when the library is missing), memory with NVML (cudarc has no NVML). Memory
//! figures are the whole device's, as `nvidia-smi` shows them: other processes count too.

/// One line saying what GPU there is, or why none is usable.
pub(crate) fn describe(device: i32) -> String {
    imp::describe(device)
}

#[cfg(feature = "cuda")]
pub(crate) use imp::{MemoryWatch, check_cuda};

/// Stand-in when built without `cuda`: no facts, nothing to watch.
#[cfg(not(feature = "cuda"))]
pub(crate) struct MemoryWatch;

#[cfg(not(feature = "cuda"))]
use serde_json::{Map, Value};

#[cfg(not(feature = "cuda"))]
impl MemoryWatch {
    pub fn start(_device: i32) -> Option<MemoryWatch> {
        None
    }
    pub fn loaded(&self) {}
    pub fn facts(&self) -> Map<String, Value> {
        Map::new()
    }
    pub fn stop(&self) {}
}

#[cfg(not(feature = "cuda"))]
mod imp {
    pub fn describe(_device: i32) -> String {
        "gpu: not checked (llmtest-onnx built without the `cuda` feature)".into()
    }
}

#[cfg(feature = "cuda")]
mod imp {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use cudarc::driver::{result, sys};
    use nvml_wrapper::Nvml;
    use serde_json::{Map, Value, json};

    /// Fails with one clear line when there is no CUDA driver or no device.
    pub fn check_cuda() -> Result<(), String> {
        // SAFETY: only tries to dlopen libcuda; every other cudarc call panics without it.
        if !unsafe { sys::is_culib_present() } {
            return Err(
                "no CUDA driver library (libcuda) on this machine: no NVIDIA GPU or driver".into(),
            );
        }
        result::init().map_err(|e| format!("CUDA driver failed to initialise: {e:?}"))?;
        let n =
            result::device::get_count().map_err(|e| format!("CUDA cannot count devices: {e:?}"))?;
        if n == 0 {
            return Err("the CUDA driver reports no devices".into());
        }
        Ok(())
    }

    struct Device {
        name: String,
        driver: String,
        total: u64,
    }

    fn device(ordinal: i32) -> Result<Device, String> {
        check_cuda()?;
        let dev =
            result::device::get(ordinal).map_err(|e| format!("no CUDA device {ordinal}: {e:?}"))?;
        let name = result::device::get_name(dev).map_err(|e| format!("{e:?}"))?;
        // SAFETY: `dev` is a valid device handle from `get`.
        let total = unsafe { result::device::total_mem(dev) }.map_err(|e| format!("{e:?}"))? as u64;
        let mut v = 0;
        // SAFETY: plain query into a local.
        let driver = match unsafe { sys::cuDriverGetVersion(&mut v) } {
            sys::CUresult::CUDA_SUCCESS => format!("CUDA {}.{}", v / 1000, (v % 1000) / 10),
            other => format!("unknown ({other:?})"),
        };
        Ok(Device {
            name,
            driver,
            total,
        })
    }

    pub fn describe(ordinal: i32) -> String {
        match device(ordinal) {
            Ok(d) => {
                let nvml = Nvml::init().ok();
                let driver = nvml
                    .as_ref()
                    .and_then(|n| n.sys_driver_version().ok())
                    .map(|v| format!("driver {v}, "))
                    .unwrap_or_default();
                let used = used_bytes(nvml.as_ref(), ordinal)
                    .map(|u| format!(", {} MiB used", u >> 20))
                    .unwrap_or_else(|| ", memory use unknown (no NVML)".into());
                format!(
                    "gpu {ordinal}: {} ({driver}{}), {} MiB total{used}",
                    d.name,
                    d.driver,
                    d.total >> 20
                )
            }
            Err(e) => format!("gpu: none usable ({e})"),
        }
    }

    fn used_bytes(nvml: Option<&Nvml>, ordinal: i32) -> Option<u64> {
        nvml?
            .device_by_index(ordinal as u32)
            .ok()?
            .memory_info()
            .ok()
            .map(|m| m.used)
    }

    /// Samples device memory every 20 ms from before the model is loaded until `stop`.
    pub struct MemoryWatch {
        ordinal: i32,
        device: Device,
        before: Option<u64>,
        after: Mutex<Option<u64>>,
        peak: Arc<AtomicU64>,
        done: Arc<AtomicBool>,
    }

    impl MemoryWatch {
        pub fn start(ordinal: i32) -> Option<MemoryWatch> {
            let device = device(ordinal).ok()?;
            let nvml = Nvml::init().ok().map(Arc::new);
            let before = used_bytes(nvml.as_deref(), ordinal);
            let peak = Arc::new(AtomicU64::new(before.unwrap_or(0)));
            let done = Arc::new(AtomicBool::new(false));
            if let Some(nvml) = nvml {
                let (peak, done) = (peak.clone(), done.clone());
                std::thread::Builder::new()
                    .name("llmtest-gpu-memory".into())
                    .spawn(move || {
                        while !done.load(Ordering::Relaxed) {
                            if let Some(u) = used_bytes(Some(&nvml), ordinal) {
                                peak.fetch_max(u, Ordering::Relaxed);
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    })
                    .ok()?;
            }
            Some(MemoryWatch {
                ordinal,
                device,
                before,
                after: Mutex::new(None),
                peak,
                done,
            })
        }

        /// Call once the model is loaded.
        pub fn loaded(&self) {
            let nvml = Nvml::init().ok();
            *self.after.lock().unwrap_or_else(|e| e.into_inner()) =
                used_bytes(nvml.as_ref(), self.ordinal);
        }

        pub fn facts(&self) -> Map<String, Value> {
            let mib = |b: u64| json!(b >> 20);
            let mut m = Map::new();
            m.insert("gpu".into(), json!(self.device.name));
            m.insert("gpu_driver".into(), json!(self.device.driver));
            m.insert("gpu_memory_total_mib".into(), mib(self.device.total));
            if let Some(b) = self.before {
                m.insert("gpu_memory_before_load_mib".into(), mib(b));
                m.insert(
                    "gpu_memory_peak_mib".into(),
                    mib(self.peak.load(Ordering::Relaxed)),
                );
            }
            if let Some(a) = *self.after.lock().unwrap_or_else(|e| e.into_inner()) {
                m.insert("gpu_memory_after_load_mib".into(), mib(a));
            }
            m
        }

        pub fn stop(&self) {
            self.done.store(true, Ordering::Relaxed);
        }
    }

    impl Drop for MemoryWatch {
        fn drop(&mut self) {
            self.stop();
        }
    }
}
