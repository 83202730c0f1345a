//! Mixed precision: libtorch's autocast with a chosen dtype, on CUDA or the CPU.
//!
//! tch exposes autocast for CUDA with libtorch's default dtype (float16) only. This module calls
//! libtorch's own `at::autocast` functions (exported C++ symbols of `libtorch_cpu.so`, bound
//! by their mangled names; a libtorch without them fails at link time, not at run time) to
//! choose bfloat16 or float16 and the device type, as `torch.autocast(device, dtype=...)` does.
#![allow(unsafe_code)]

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

/// The autocast setting of a run (`train.autocast`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Autocast {
    /// Full precision.
    #[default]
    Off,
    /// bfloat16 autocast (`torch.autocast(device, dtype=torch.bfloat16)`).
    Bf16,
    /// float16 autocast (CUDA's default autocast dtype).
    Fp16,
}

mod ffi {
    // c10::DeviceType and c10::ScalarType are `enum class : int8_t`.
    unsafe extern "C" {
        #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
        pub fn set_autocast_dtype(device: i8, dtype: i8);
        #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
        pub fn get_autocast_dtype(device: i8) -> i8;
        #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
        pub fn set_autocast_enabled(device: i8, enabled: bool);
        #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
        pub fn is_autocast_enabled(device: i8) -> bool;
        #[link_name = "_ZN2at8autocast17increment_nestingEv"]
        pub fn increment_nesting() -> i32;
        #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
        pub fn decrement_nesting() -> i32;
        #[link_name = "_ZN2at8autocast11clear_cacheEv"]
        pub fn clear_cache();
    }
}

/// c10::DeviceType of `device` (CPU = 0, CUDA = 1).
fn device_type(device: Device) -> i8 {
    match device {
        Device::Cuda(_) => 1,
        _ => 0,
    }
}

/// c10::ScalarType codes of the two autocast dtypes.
fn scalar_type(mode: Autocast) -> Option<i8> {
    match mode {
        Autocast::Off => None,
        Autocast::Fp16 => Some(5),  // c10::ScalarType::Half
        Autocast::Bf16 => Some(15), // c10::ScalarType::BFloat16
    }
}

/// The kind autocast casts matrix products to, if any.
pub fn kind(mode: Autocast) -> Option<Kind> {
    match mode {
        Autocast::Off => None,
        Autocast::Fp16 => Some(Kind::Half),
        Autocast::Bf16 => Some(Kind::BFloat16),
    }
}

/// Restores the previous autocast state when dropped (also when `f` panics).
struct Guard {
    device: i8,
    enabled: bool,
    dtype: i8,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: plain setters of libtorch's thread-local autocast state, called with the
        // values read before the region began.
        unsafe {
            if ffi::decrement_nesting() == 0 {
                ffi::clear_cache();
            }
            ffi::set_autocast_enabled(self.device, self.enabled);
            ffi::set_autocast_dtype(self.device, self.dtype);
        }
    }
}

/// Runs `f` with autocast `mode` on `device`'s type (CUDA or CPU), restoring the previous
/// state afterwards; `Autocast::Off` just runs `f`.
pub fn with_autocast<T>(device: Device, mode: Autocast, f: impl FnOnce() -> T) -> T {
    let Some(dtype) = scalar_type(mode) else {
        return f();
    };
    let d = device_type(device);
    // SAFETY: getters and setters of libtorch's thread-local autocast state with valid
    // device-type and scalar-type codes (see `device_type` and `scalar_type`).
    let _guard = unsafe {
        let guard = Guard {
            device: d,
            enabled: ffi::is_autocast_enabled(d),
            dtype: ffi::get_autocast_dtype(d),
        };
        ffi::set_autocast_dtype(d, dtype);
        ffi::set_autocast_enabled(d, true);
        ffi::increment_nesting();
        guard
    };
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn matmuls_run_in_the_chosen_dtype_inside_the_region_only() {
        let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([8, 3], (Kind::Float, Device::Cpu));
        let inside = with_autocast(Device::Cpu, Autocast::Bf16, || a.matmul(&b));
        assert_eq!(inside.kind(), Kind::BFloat16);
        assert_eq!(
            a.matmul(&b).kind(),
            Kind::Float,
            "restored after the region"
        );
        let nested = with_autocast(Device::Cpu, Autocast::Bf16, || {
            let x = with_autocast(Device::Cpu, Autocast::Off, || a.matmul(&b));
            (x.kind(), a.matmul(&b).kind())
        });
        assert_eq!(nested, (Kind::BFloat16, Kind::BFloat16));
        assert_eq!(
            with_autocast(Device::Cpu, Autocast::Off, || a.matmul(&b)).kind(),
            Kind::Float
        );
        // the result is close to full precision
        let err = (inside.to_kind(Kind::Float) - a.matmul(&b))
            .abs()
            .max()
            .double_value(&[]);
        assert!(err < 0.1, "{err}");
        assert_eq!(kind(Autocast::Fp16), Some(Kind::Half));
    }
}
