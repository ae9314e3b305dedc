//! The audio files the simulated egress writes: a 440 Hz tone, really
//! encoded, in every format Voxplane offers.
//!
//! | format | codec | container |
//! |---|---|---|
//! | OGG | Opus, 48 kHz mono, 48 kbit/s, 20 ms frames | Ogg (RFC 7845: `OpusHead`, `OpusTags`, granules, end trim) |
//! | MP4 | the same Opus packets | ISOBMFF, `Opus` sample entry with `dOps` and an edit list for the pre-skip ("Encapsulation of Opus in ISO Base Media File Format") |
//! | WAV | PCM, 16-bit, 16 kHz mono | RIFF/WAVE |
//!
//! OGG and MP4 are what LiveKit's egress writes for audio-only room
//! composites (`oggmux`/`mp4mux` with Opus). The Opus encoder is the
//! pure-Rust `opus-pure`; the Ogg pages are its writer's, the MP4 boxes are
//! written here.

use opus_pure::{Application, MAX_PACKET_BYTES, OggOpusWriter, OpusEncoder, OpusHead};

/// What the simulated egress can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// Ogg/Opus.
    Ogg,
    /// MP4 (ISOBMFF) with Opus.
    Mp4,
    /// RIFF/WAVE PCM.
    Wav,
}

impl AudioFormat {
    /// The file extension.
    pub fn ext(self) -> &'static str {
        match self {
            Self::Ogg => "ogg",
            Self::Mp4 => "mp4",
            Self::Wav => "wav",
        }
    }

    /// `millis` of the tone in this format.
    pub fn encode(self, millis: u64) -> Result<Vec<u8>, String> {
        match self {
            Self::Ogg => ogg_opus(millis),
            Self::Mp4 => mp4_opus(millis),
            Self::Wav => Ok(wav(millis)),
        }
    }
}

/// The tone's frequency.
pub const TONE_HZ: f64 = 440.0;
/// The tone's peak amplitude (of full scale).
const AMPLITUDE: f64 = 0.3;
const WAV_RATE: u32 = 16_000;
/// Opus always runs at 48 kHz here.
const OPUS_RATE: u32 = 48_000;
/// Samples per 20 ms Opus frame at 48 kHz.
const FRAME: usize = 960;

fn tone(n: usize, rate: u32) -> f64 {
    #[allow(clippy::cast_precision_loss)] // sample indexes of seconds of audio
    let t = n as f64 / f64::from(rate);
    (t * TONE_HZ * std::f64::consts::TAU).sin() * AMPLITUDE
}

/// A WAV file of `millis` of the tone.
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
    for n in 0..samples as usize {
        #[allow(clippy::cast_possible_truncation)] // |v| < i16::MAX
        let v = (tone(n, WAV_RATE) * f64::from(i16::MAX)) as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The tone encoded as Opus packets.
struct OpusTone {
    head: OpusHead,
    packets: Vec<Vec<u8>>,
    /// Samples (48 kHz) of audio, without the pre-skip and the padding.
    samples: u64,
}

/// Encodes `millis` of the tone (the encoder is fed enough silence past the
/// end to flush its look-ahead, as RFC 7845 §4.4 expects).
fn opus_tone(millis: u64) -> Result<OpusTone, String> {
    let err = |e: opus_pure::Error| format!("opus encoder: {e}");
    let mut encoder = OpusEncoder::new(48_000, 1, Application::Audio).map_err(err)?;
    encoder.bitrate_bps = 48_000;
    let head = OpusHead::for_encoder(&encoder, OPUS_RATE);
    let samples = millis * u64::from(OPUS_RATE) / 1000;
    let total = usize::try_from(samples).map_err(|e| e.to_string())?;
    let frames = (total + usize::from(head.pre_skip)).div_ceil(FRAME);
    let mut packets = Vec::with_capacity(frames);
    let mut block = vec![0f32; FRAME];
    let mut buf = vec![0u8; MAX_PACKET_BYTES];
    for i in 0..frames {
        for (k, s) in block.iter_mut().enumerate() {
            let n = i * FRAME + k;
            #[allow(clippy::cast_possible_truncation)] // |tone| <= 0.3
            let v = if n < total {
                tone(n, OPUS_RATE) as f32
            } else {
                0.0
            };
            *s = v;
        }
        let len = encoder.encode(&block, FRAME, &mut buf).map_err(err)?;
        packets.push(buf[..len].to_vec());
    }
    Ok(OpusTone {
        head,
        packets,
        samples,
    })
}

/// An Ogg/Opus file of `millis` of the tone.
pub fn ogg_opus(millis: u64) -> Result<Vec<u8>, String> {
    let err = |e: opus_pure::Error| format!("ogg writer: {e}");
    let t = opus_tone(millis)?;
    let final_granule = u64::from(t.head.pre_skip) + t.samples;
    let mut w = OggOpusWriter::new(Vec::new(), t.head).map_err(err)?;
    let last = t.packets.len().saturating_sub(1);
    for (i, p) in t.packets.iter().enumerate() {
        if i == last {
            // The end trim: the last packet ends where the audio does.
            let done = u64::try_from(w.granule()).unwrap_or(0);
            let dur = u32::try_from(final_granule.saturating_sub(done)).unwrap_or(0);
            w.write_packet_with_duration(p, dur).map_err(err)?;
        } else {
            w.write_packet(p).map_err(err)?;
        }
    }
    w.finish().map_err(err)
}

/// An ISOBMFF box.
fn bx(kind: &[u8; 4], parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = 8 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(kind);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// A full box (version 0, `flags`).
fn full(kind: &[u8; 4], flags: u32, body: &[u8]) -> Vec<u8> {
    bx(kind, &[&flags.to_be_bytes(), body])
}

/// The unity transformation matrix of `mvhd`/`tkhd`.
fn matrix() -> Vec<u8> {
    [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

/// The `moov` box for `t`, its single chunk starting at `chunk_offset`.
fn moov(t: &OpusTone, chunk_offset: u32) -> Vec<u8> {
    let frames = u32::try_from(t.packets.len()).unwrap_or(u32::MAX);
    let media_len = frames * FRAME as u32;
    // Presentation: the audio only (the pre-skip is cut by the edit list).
    let shown = u32::try_from(t.samples).unwrap_or(u32::MAX);
    let be32 = |v: u32| v.to_be_bytes();
    let mut mvhd = Vec::new();
    mvhd.extend_from_slice(&[0; 8]); // creation, modification
    mvhd.extend_from_slice(&be32(OPUS_RATE));
    mvhd.extend_from_slice(&be32(shown));
    mvhd.extend_from_slice(&be32(0x0001_0000)); // rate 1.0
    mvhd.extend_from_slice(&[0x01, 0x00]); // volume 1.0
    mvhd.extend_from_slice(&[0; 10]);
    mvhd.extend_from_slice(&matrix());
    mvhd.extend_from_slice(&[0; 24]); // pre_defined
    mvhd.extend_from_slice(&be32(2)); // next track id
    let mut tkhd = Vec::new();
    tkhd.extend_from_slice(&[0; 8]);
    tkhd.extend_from_slice(&be32(1)); // track id
    tkhd.extend_from_slice(&[0; 4]);
    tkhd.extend_from_slice(&be32(shown));
    tkhd.extend_from_slice(&[0; 8]);
    tkhd.extend_from_slice(&[0, 0, 0, 0]); // layer, alternate group
    tkhd.extend_from_slice(&[0x01, 0x00, 0, 0]); // volume 1.0, reserved
    tkhd.extend_from_slice(&matrix());
    tkhd.extend_from_slice(&[0; 8]); // width, height
    let mut elst = Vec::new();
    elst.extend_from_slice(&be32(1));
    elst.extend_from_slice(&be32(shown));
    elst.extend_from_slice(&be32(u32::from(t.head.pre_skip))); // media time
    elst.extend_from_slice(&[0, 1, 0, 0]); // rate 1.0
    let mut mdhd = Vec::new();
    mdhd.extend_from_slice(&[0; 8]);
    mdhd.extend_from_slice(&be32(OPUS_RATE));
    mdhd.extend_from_slice(&be32(media_len));
    mdhd.extend_from_slice(&[0x55, 0xC4, 0, 0]); // "und", pre_defined
    let hdlr = [&[0u8; 4][..], b"soun", &[0; 12], b"SoundHandler\0"].concat();
    let url = full(b"url ", 1, &[]);
    let dref = full(b"dref", 0, &[&be32(1)[..], &url].concat());
    // The Opus sample entry (AudioSampleEntry) and its `dOps`.
    let mut dops = vec![0u8, t.head.channel_count];
    dops.extend_from_slice(&t.head.pre_skip.to_be_bytes());
    dops.extend_from_slice(&be32(OPUS_RATE));
    dops.extend_from_slice(&t.head.output_gain_q8.to_be_bytes());
    dops.push(0); // channel mapping family
    let mut entry = vec![0u8; 6];
    entry.extend_from_slice(&1u16.to_be_bytes()); // data reference index
    entry.extend_from_slice(&[0; 8]);
    entry.extend_from_slice(&u16::from(t.head.channel_count).to_be_bytes());
    entry.extend_from_slice(&16u16.to_be_bytes()); // sample size
    entry.extend_from_slice(&[0; 4]);
    entry.extend_from_slice(&be32(OPUS_RATE << 16));
    let opus = bx(b"Opus", &[&entry, &bx(b"dOps", &[&dops])]);
    let stsd = full(b"stsd", 0, &[&be32(1)[..], &opus].concat());
    let stts = full(
        b"stts",
        0,
        &[be32(1), be32(frames), be32(FRAME as u32)].concat(),
    );
    let stsc = full(
        b"stsc",
        0,
        &[be32(1), be32(1), be32(frames), be32(1)].concat(),
    );
    let mut sizes = [be32(0), be32(frames)].concat();
    for p in &t.packets {
        sizes.extend_from_slice(&be32(u32::try_from(p.len()).unwrap_or(0)));
    }
    let stsz = full(b"stsz", 0, &sizes);
    let stco = full(b"stco", 0, &[be32(1), be32(chunk_offset)].concat());
    let stbl = bx(b"stbl", &[&stsd, &stts, &stsc, &stsz, &stco]);
    let minf = bx(
        b"minf",
        &[&full(b"smhd", 0, &[0; 4]), &bx(b"dinf", &[&dref]), &stbl],
    );
    let mdia = bx(
        b"mdia",
        &[&full(b"mdhd", 0, &mdhd), &full(b"hdlr", 0, &hdlr), &minf],
    );
    let edts = bx(b"edts", &[&full(b"elst", 0, &elst)]);
    let trak = bx(b"trak", &[&full(b"tkhd", 3, &tkhd), &edts, &mdia]);
    bx(b"moov", &[&full(b"mvhd", 0, &mvhd), &trak])
}

/// An MP4 file of `millis` of the tone: `ftyp`, `moov` (before the media,
/// so it streams), `mdat` with the Opus packets as one chunk.
pub fn mp4_opus(millis: u64) -> Result<Vec<u8>, String> {
    let t = opus_tone(millis)?;
    let ftyp = bx(
        b"ftyp",
        &[
            b"isom",
            &0x200u32.to_be_bytes(),
            b"isom",
            b"iso2",
            b"mp41",
            b"Opus",
        ],
    );
    // The moov's size does not depend on the offset it records.
    let moov_len = moov(&t, 0).len();
    let offset = u32::try_from(ftyp.len() + moov_len + 8).map_err(|e| e.to_string())?;
    let moov = moov(&t, offset);
    let media: Vec<u8> = t.packets.concat();
    let mdat = bx(b"mdat", &[&media]);
    Ok([ftyp, moov, mdat].concat())
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
    fn ogg_starts_with_opus_head() {
        let o = ogg_opus(2000).unwrap();
        assert_eq!(&o[..4], b"OggS");
        assert_eq!(&o[28..36], b"OpusHead");
    }

    #[test]
    fn mp4_boxes_and_chunk_offset() {
        let m = mp4_opus(1000).unwrap();
        assert_eq!(&m[4..8], b"ftyp");
        let ftyp_len = u32::from_be_bytes(m[..4].try_into().unwrap()) as usize;
        assert_eq!(&m[ftyp_len + 4..ftyp_len + 8], b"moov");
        let moov_len = u32::from_be_bytes(m[ftyp_len..ftyp_len + 4].try_into().unwrap()) as usize;
        let mdat = ftyp_len + moov_len;
        assert_eq!(&m[mdat + 4..mdat + 8], b"mdat");
        let stco = m.windows(4).position(|w| w == b"stco").unwrap();
        let off = u32::from_be_bytes(m[stco + 12..stco + 16].try_into().unwrap()) as usize;
        assert_eq!(off, mdat + 8);
    }
}
