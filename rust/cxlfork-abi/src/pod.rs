//! Plain-old-data structs: `#[repr(C)]`, integer fields only, no padding.
//!
//! Such a struct can be viewed as bytes and read back from any bytes, which is
//! what both the ioctl copies and the on-pool format need.

/// Types whose every bit pattern is valid and which contain no padding.
///
/// # Safety
///
/// Implementors must be valid for any bit pattern and have no padding bytes.
pub unsafe trait Pod: Copy + Sized {
    /// All bytes zero.
    fn zeroed() -> Self {
        // SAFETY: `Self: Pod`, for which all-zero bytes are a valid value.
        unsafe { core::mem::zeroed() }
    }

    /// The value's bytes.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: `Self` has no padding, so all `size_of::<Self>()` bytes are initialised.
        unsafe { core::slice::from_raw_parts(core::ptr::from_ref(self).cast::<u8>(), core::mem::size_of::<Self>()) }
    }

    /// The value's bytes, writable: any bytes written form a valid value.
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `Self: Pod`: no padding, and every bit pattern is valid.
        unsafe { core::slice::from_raw_parts_mut(core::ptr::from_mut(self).cast::<u8>(), core::mem::size_of::<Self>()) }
    }

    /// Reads a value from the first `size_of::<Self>()` bytes of `bytes`.
    fn read_from(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.get(..core::mem::size_of::<Self>())?;
        // SAFETY: `bytes` holds enough readable bytes; every bit pattern is a valid
        // `Self`; `read_unaligned` has no alignment requirement.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}

// SAFETY: integers have no padding and every bit pattern is valid.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: an array of `Pod` has no padding between elements (size is a multiple of alignment).
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// Defines a `#[repr(C)]` struct of [`Pod`] fields, checks at compile time
/// that it has no padding, and implements [`Pod`] for it.
macro_rules! pod_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $ty ),*
        }

        const _: () = {
            const fn is_pod<T: super::pod::Pod>() {}
            $( is_pod::<$ty>(); )*
            assert!(
                ::core::mem::size_of::<$name>() == 0 $( + ::core::mem::size_of::<$ty>() )*,
                "pod_struct has padding"
            );
        };

        // SAFETY: every field is `Pod` and the assertion above proves there is no padding.
        unsafe impl super::pod::Pod for $name {}

        impl $name {
            /// Size of the struct in bytes.
            pub const SIZE: usize = ::core::mem::size_of::<Self>();
        }
    };
}
pub(crate) use pod_struct;

/// A slice of `Pod` values as bytes.
pub fn slice_as_bytes<T: Pod>(s: &[T]) -> &[u8] {
    // SAFETY: `T: Pod` has no padding, so every byte of the slice is initialised.
    unsafe { core::slice::from_raw_parts(s.as_ptr().cast::<u8>(), core::mem::size_of_val(s)) }
}

/// A slice of `Pod` values as writable bytes: any bytes written are valid values.
pub fn slice_as_bytes_mut<T: Pod>(s: &mut [T]) -> &mut [u8] {
    // SAFETY: `T: Pod`: no padding and every bit pattern is valid.
    unsafe { core::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<u8>(), core::mem::size_of_val(s)) }
}
