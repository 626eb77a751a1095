// Photos are resized and re-encoded on the phone before upload: the long side and JPEG
// quality come from the standard's `capture` (default 3000 px / 0.9). Drawing onto a
// canvas applies the EXIF orientation and drops every EXIF tag, GPS position included.
export const DEFAULT_CAPTURE = { long_side: 3000, jpeg_quality: 0.9, location: false };

export function targetSize(width, height, longSide) {
  const scale = Math.min(1, longSide / Math.max(width, height)); // never enlarge
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

async function decode(file) {
  if ('createImageBitmap' in window) {
    try { return await createImageBitmap(file, { imageOrientation: 'from-image' }); } catch { /* fall back */ }
  }
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally {
    URL.revokeObjectURL(url);
  }
}

export async function preparePhoto(file, capture = {}) {
  const { long_side: longSide, jpeg_quality: quality } = { ...DEFAULT_CAPTURE, ...capture };
  const source = await decode(file);
  const srcW = source.naturalWidth || source.width;
  const srcH = source.naturalHeight || source.height;
  const { width, height } = targetSize(srcW, srcH, longSide);
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { alpha: false });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, width, height);
  if (source.close) source.close();
  const blob = await new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('could not encode the photo'))), 'image/jpeg', quality));
  canvas.width = canvas.height = 0; // free the pixels now: phones have little memory
  return { blob, width, height, originalWidth: srcW, originalHeight: srcH, originalBytes: file.size };
}

// Where the standard asks for it: the phone's position, or null if refused/unavailable.
export function currentPosition(timeoutMs = 10000) {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ latitude: p.coords.latitude, longitude: p.coords.longitude, accuracy_m: p.coords.accuracy }),
      () => resolve(null),
      { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 60000 });
  });
}
