//! The small, valid audio files the simulated egress writes.
//!
//! - WAV: 16-bit PCM mono at 16 kHz, a 440 Hz tone.
//! - OGG: an Ogg/Opus stream (RFC 7845) as LiveKit's egress muxes it
//!   (`oggmux` with Opus): `OpusHead`, `OpusTags`, then 20 ms CELT packets.
//!   Without an Opus encoder the packets are the standard 3-byte Opus
//!   silence frame (`F8 FF FE`, what WebRTC stacks send for silence), so the
//!   file is a real, playable stream of silence of the right duration.
//!
//! MP4 is not produced (it would need an AAC or Opus-in-ISOBMFF writer); the
//! egress service refuses it with `invalid_argument`.

/// What the simulated egress can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// Ogg/Opus.
    Ogg,
    /// RIFF/WAVE PCM.
    Wav,
}

const WAV_RATE: u32 = 16_000;
const TONE_HZ: f64 = 440.0;

/// A WAV file of `millis` of a 440 Hz tone.
pub fn wav(millis: u64) -> Vec<u8> {
    let samples = u32::try_from(millis * u64::from(WAV_RATE) / 1000).unwrap_or(u32::MAX / 4);
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&WAV_RATE.to_le_bytes());
    out.extend_from_slice(&(WAV_RATE * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for n in 0..samples {
        let t = f64::from(n) / f64::from(WAV_RATE);
        let v = (t * TONE_HZ * std::f64::consts::TAU).sin() * 0.3 * f64::from(i16::MAX);
        #[allow(clippy::cast_possible_truncation)] // |v| < i16::MAX
        out.extend_from_slice(&(v as i16).to_le_bytes());
    }
    out
}

/// Samples per 20 ms Opus packet at 48 kHz.
const OPUS_FRAME: u64 = 960;
/// The decoder delay announced in `OpusHead` (libopus' usual value).
const PRE_SKIP: u16 = 312;
/// One 20 ms fullband CELT packet decoding to silence.
const SILENCE: [u8; 3] = [0xF8, 0xFF, 0xFE];
/// Packets per Ogg page (one second).
const PACKETS_PER_PAGE: usize = 50;

/// An Ogg/Opus file of `millis` (rounded up to 20 ms) of silence.
pub fn ogg_opus(millis: u64) -> Vec<u8> {
    let serial: u32 = rand::random();
    let mut ogg = OggWriter {
        out: Vec::new(),
        serial,
        seq: 0,
    };
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(1); // channels
    head.extend_from_slice(&PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // mapping family
    ogg.page(&[&head], 0, 0x02);
    let vendor = b"voxplane livekit simulator";
    let mut tags = Vec::new();
    tags.extend_from_slice(b"OpusTags");
    tags.extend_from_slice(&u32::try_from(vendor.len()).unwrap_or(0).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes());
    ogg.page(&[&tags], 0, 0);
    let packets = millis.div_ceil(20).max(1);
    let mut written = 0u64;
    while written < packets {
        let n = (packets - written).min(PACKETS_PER_PAGE as u64);
        written += n;
        let page: Vec<&[u8]> = (0..n).map(|_| &SILENCE[..]).collect();
        let last = written == packets;
        ogg.page(&page, written * OPUS_FRAME, if last { 0x04 } else { 0 });
    }
    ogg.out
}

struct OggWriter {
    out: Vec<u8>,
    serial: u32,
    seq: u32,
}

impl OggWriter {
    /// One page holding whole packets (each shorter than 255 bytes × 255).
    fn page(&mut self, packets: &[&[u8]], granule: u64, header_type: u8) {
        let mut lacing = Vec::new();
        for p in packets {
            let mut len = p.len();
            while len >= 255 {
                lacing.push(255u8);
                len -= 255;
            }
            lacing.push(u8::try_from(len).unwrap_or(0));
        }
        let start = self.out.len();
        self.out.extend_from_slice(b"OggS");
        self.out.push(0);
        self.out.push(header_type);
        self.out.extend_from_slice(&granule.to_le_bytes());
        self.out.extend_from_slice(&self.serial.to_le_bytes());
        self.out.extend_from_slice(&self.seq.to_le_bytes());
        self.out.extend_from_slice(&[0, 0, 0, 0]); // CRC, filled below
        self.out.push(u8::try_from(lacing.len()).unwrap_or(255));
        self.out.extend_from_slice(&lacing);
        for p in packets {
            self.out.extend_from_slice(p);
        }
        let crc = ogg_crc(&self.out[start..]);
        self.out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
        self.seq += 1;
    }
}

/// The Ogg page checksum: CRC-32, polynomial 0x04c11db7, no reflection,
/// initial value and final XOR 0.
fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_and_length() {
        let w = wav(1000);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(&w[8..12], b"WAVE");
        assert_eq!(w.len(), 44 + 32_000);
    }

    #[test]
    fn ogg_pages_and_crc() {
        // The CRC of the standard check string for this variant.
        assert_eq!(ogg_crc(b"123456789"), 0x89a1_897f);
        let o = ogg_opus(2000);
        assert_eq!(&o[..4], b"OggS");
        assert_eq!(&o[28..36], b"OpusHead");
        // 2 header pages + 2 audio pages of 50 packets.
        assert_eq!(o.windows(4).filter(|w| w == b"OggS").count(), 4);
    }
}
