// Barcode / QR scanning with the browser's BarcodeDetector, where it exists (Chrome on
// Android). Typing always works; this only fills the field faster.
import { t } from './i18n.js';

// The camera needs a secure context (https:// or localhost), so the button only shows there.
export const canScan = () => 'BarcodeDetector' in window && window.isSecureContext && !!navigator.mediaDevices;

async function detector(formats) {
  const supported = await window.BarcodeDetector.getSupportedFormats();
  const usable = formats.filter((f) => supported.includes(f));
  return new window.BarcodeDetector(usable.length ? { formats: usable } : undefined);
}

// Opens the camera in a dialog; resolves with the first code read, or null when cancelled.
export async function scanCode(formats = ['qr_code', 'code_128', 'code_39', 'ean_13', 'data_matrix']) {
  const det = await detector(formats);
  const dialog = document.createElement('dialog');
  dialog.setAttribute('aria-label', t('scan.title'));
  dialog.innerHTML = `<p></p><video playsinline muted></video><button type="button" class="btn secondary"></button>`;
  dialog.querySelector('p').textContent = t('scan.hint');
  dialog.querySelector('button').textContent = t('common.cancel');
  document.body.append(dialog);
  const video = dialog.querySelector('video');
  let stream = null;
  let done = false;
  const result = await new Promise(async (resolve) => {
    const finish = (value) => { if (!done) { done = true; resolve(value); } };
    dialog.querySelector('button').onclick = () => finish(null);
    dialog.addEventListener('cancel', () => finish(null));
    dialog.showModal();
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
      video.srcObject = stream;
      await video.play();
      while (!done) {
        const codes = await det.detect(video).catch(() => []);
        if (codes.length) finish(codes[0].rawValue);
        await new Promise((r) => setTimeout(r, 200));
      }
    } catch {
      dialog.querySelector('p').textContent = t('scan.no_camera');
    }
  });
  if (stream) stream.getTracks().forEach((tr) => tr.stop());
  dialog.close();
  dialog.remove();
  return result;
}
