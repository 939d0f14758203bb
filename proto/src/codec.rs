//! The codec of every carbonx service: prost's, except that a request that does not decode
//! (random bytes, invalid UTF-8 in a string, nesting past the limit) is the client's error,
//! INVALID_ARGUMENT with reason `MALFORMED_REQUEST`, in the same form as every other
//! refusal (`crate::status`: the richer error model, `x-carbonx-reason`), not prost's
//! INTERNAL.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// The reason code of a request that does not decode.
pub const MALFORMED_REQUEST: &str = "MALFORMED_REQUEST";
/// At most this much of prost's description is echoed back.
const WHY_BYTES_MAX: usize = 200;

/// Prost's codec with carbonx's decode errors.
#[derive(Debug)]
pub struct CarbonxCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for CarbonxCodec<T, U> {
    fn default() -> Self {
        CarbonxCodec { _pd: PhantomData }
    }
}

impl<T, U> Codec for CarbonxCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = CarbonxDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        CarbonxDecoder {
            inner: ProstDecoder::new(BufferSettings::default()),
        }
    }
}

/// Prost's decoder, with the error mapped.
#[derive(Debug)]
pub struct CarbonxDecoder<U> {
    inner: ProstDecoder<U>,
}

impl<U: Message + Default> Decoder for CarbonxDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        self.inner
            .decode(buf)
            .map_err(|status| malformed(status.message()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// The status of a request that does not decode.
pub fn malformed(why: &str) -> Status {
    let mut cut = why.len().min(WHY_BYTES_MAX);
    while !why.is_char_boundary(cut) {
        cut -= 1;
    }
    let message = format!(
        "the request does not decode as its message: {}",
        &why[..cut]
    );
    let rejection = crate::v1::Rejection {
        reason: MALFORMED_REQUEST.into(),
        field: String::new(),
        message,
    };
    crate::status::refusal(tonic::Code::InvalidArgument, &rejection)
}
