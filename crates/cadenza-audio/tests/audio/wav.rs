//! A minimal WAV writer for tests: PCM16 and IEEE float32, any rate and channel count.

#[derive(Clone, Copy)]
pub enum Format {
    Pcm16,
    Float32,
}

/// `samples` are interleaved.
pub fn write_wav(samples: &[f32], rate: u32, channels: usize, format: Format) -> Vec<u8> {
    let (tag, bits): (u16, u16) = match format {
        Format::Pcm16 => (1, 16),
        Format::Float32 => (3, 32),
    };
    let block = channels as u16 * bits / 8;
    let data_len = samples.len() as u32 * (bits as u32 / 8);
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&(channels as u16).to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * block as u32).to_le_bytes());
    out.extend_from_slice(&block.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for &s in samples {
        match format {
            Format::Pcm16 => out
                .extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes()),
            Format::Float32 => out.extend_from_slice(&s.to_le_bytes()),
        }
    }
    out
}
