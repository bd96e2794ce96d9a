"""Build an image-only ("scanned") PDF from pages of a PDF with a text layer: real pixels, no text layer."""

from __future__ import annotations

from pathlib import Path


def make_scan(source: Path, pages: list[int], target: Path, dpi: int = 200) -> list[str]:
    """Render ``pages`` of ``source`` into a new PDF of images only; returns the pages' original texts."""
    import numpy as np
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    src = pdfium.PdfDocument(str(source))
    out = pdfium.PdfDocument.new()
    texts = []
    for index in pages:
        page = src[index]
        width, height = page.get_size()
        texts.append(page.get_textpage().get_text_range())
        gray = page.render(scale=dpi / 72, grayscale=True).to_numpy()
        gray = np.ascontiguousarray(gray.reshape(gray.shape[0], gray.shape[1]))
        rgb = np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))  # BGR, what PDFium takes
        bitmap = pdfium.PdfBitmap.new_native(rgb.shape[1], rgb.shape[0], pdfium_c.FPDFBitmap_BGR)
        buffer = np.ctypeslib.as_array(bitmap.buffer).reshape(rgb.shape[0], bitmap.stride)
        buffer[:, : rgb.shape[1] * 3] = rgb.reshape(rgb.shape[0], -1)
        new_page = out.new_page(width, height)
        image = pdfium.PdfImage.new(out)
        image.set_bitmap(bitmap)
        image.set_matrix(pdfium.PdfMatrix().scale(width, height))
        new_page.insert_obj(image)
        new_page.gen_content()
    out.save(str(target))
    return texts
