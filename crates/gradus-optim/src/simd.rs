//! Runtime dispatch of element-wise loops to the widest vector instructions
//! the CPU has (AVX-512, else AVX2+FMA, else the portable baseline).
//!
//! A default build targets baseline x86-64 (SSE2) so the binary runs on any
//! x86-64 machine; hot loops (the optimizer updates and activations in
//! training, the Parzen estimators' densities in tuning) are compiled a
//! second and third time with wider vector units enabled and picked at run
//! time, as faer does for its GEMMs. The kernels are element-wise with fixed
//! reduction orders (and explicit `mul_add` where they fuse), so every
//! version computes bit-identical results.

/// Defines `pub fn NAME(args)` that runs `body` compiled for the best
/// instruction set available.
#[macro_export]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn kernel($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? { kernel($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? { kernel($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports every feature avx512 is compiled with.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports every feature avx2 is compiled with.
                    return unsafe { avx2($($arg),*) };
                }
            }
            kernel($($arg),*)
        }
    };
}

/// Clears the upper halves of the vector registers (`vzeroupper`). faer's
/// AVX-512 GEMM kernels return with them dirty, and on Intel cores every
/// legacy-SSE instruction after that pays a state-transition penalty: libm's
/// `exp` — and all of this crate's baseline code — run ~30x slower
/// (measured here: 4.4 ns per `exp` before a GEMM, 139 ns after, 5.6 ns
/// after this). Call it after every faer call that may use wide vectors.
#[inline]
pub fn clear_upper_state() {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx")]
        fn vzeroupper() {
            std::arch::x86_64::_mm256_zeroupper();
        }
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX, the only feature vzeroupper needs.
            unsafe { vzeroupper() }
        }
    }
}
