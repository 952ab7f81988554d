#!/usr/bin/env python3
"""Check the PDF/A-3b structure of a report written by egress, with pikepdf (qpdf).

    check_pdf.py REPORT PAGES [--png PAGE1.png]

- XMP metadata: pdfaid:part 3 and pdfaid:conformance B;
- /OutputIntents in the catalog with an output intent of subtype /GTS_PDFA1 carrying an ICC
  profile (/DestOutputProfile, a stream with /N);
- /AF in the catalog: an array with a file specification whose /AFRelationship is /Data and
  whose /EF /F stream has /Subtype text/csv, a /Params /ModDate, and a /Desc;
- every font on every page is embedded (its descriptor, or that of a Type0 font's descendant,
  has /FontFile2 or /FontFile3);
- the document has PAGES pages;
- with --png: page 1 rendered by pdftoppm is not blank (enough dark pixels, and the image is
  not all one colour).

Exit 0 and `OK` when all holds; 1 with the first failure otherwise.
"""

import sys

import pikepdf


def fail(msg: str) -> None:
    print(f"MISMATCH: {msg}")
    sys.exit(1)


def fonts_of(page):
    res = page.obj.get("/Resources")
    if res is None:
        return []
    fonts = res.get("/Font")
    if fonts is None:
        return []
    return [fonts[k] for k in fonts.keys()]


def embedded(font) -> bool:
    if font.get("/Subtype") == "/Type0":
        return all(embedded(d) for d in font["/DescendantFonts"])
    fd = font.get("/FontDescriptor")
    if fd is None:
        return False
    return "/FontFile2" in fd or "/FontFile3" in fd or "/FontFile" in fd


def check_png(path: str) -> None:
    from PIL import Image

    img = Image.open(path).convert("L")
    w, h = img.size
    px = img.getdata()
    dark = sum(1 for p in px if p < 128)
    if len(set(img.getextrema())) < 2:
        fail(f"{path}: page 1 is a single colour")
    # Text on a table page: well over a thousand dark pixels even at 60 dpi.
    if dark < 1000:
        fail(f"{path}: page 1 looks blank ({dark} dark pixels of {w}x{h})")


def main() -> int:
    args = sys.argv[1:]
    png = None
    if "--png" in args:
        i = args.index("--png")
        png = args[i + 1]
        del args[i : i + 2]
    path, pages = args[0], int(args[1])
    pdf = pikepdf.open(path)
    root = pdf.Root

    meta = pdf.open_metadata()
    if str(meta.get("pdfaid:part")) != "3" or str(meta.get("pdfaid:conformance")) != "B":
        fail(f"XMP pdfaid part/conformance: {meta.get('pdfaid:part')!r} {meta.get('pdfaid:conformance')!r}")

    intents = root.get("/OutputIntents")
    if not intents or len(intents) == 0:
        fail("no /OutputIntents")
    pdfa = [oi for oi in intents if oi.get("/S") == "/GTS_PDFA1"]
    if not pdfa:
        fail("no output intent with /S /GTS_PDFA1")
    profile = pdfa[0].get("/DestOutputProfile")
    if profile is None or not isinstance(profile, pikepdf.Stream) or "/N" not in profile:
        fail("the PDF/A output intent has no ICC profile stream")
    if len(profile.read_bytes()) < 128:
        fail("the ICC profile is too short to be one")

    af = root.get("/AF")
    if af is None or len(af) == 0:
        fail("no /AF array in the catalog")
    data = [fs for fs in af if fs.get("/AFRelationship") == "/Data"]
    if not data:
        fail(f"no associated file with /AFRelationship /Data: {[fs.get('/AFRelationship') for fs in af]}")
    fs = data[0]
    stream = fs["/EF"]["/F"]
    if str(stream.get("/Subtype")) != "/text/csv":
        fail(f"embedded file subtype {stream.get('/Subtype')!r}, expected /text#2Fcsv")
    if "/ModDate" not in stream.get("/Params", {}):
        fail("embedded file without /Params /ModDate")
    if "/Desc" not in fs:
        fail("file specification without /Desc")
    names = root.get("/Names", {}).get("/EmbeddedFiles")
    if names is None:
        fail("the attachment is not in the /EmbeddedFiles name tree")

    if len(pdf.pages) != pages:
        fail(f"{len(pdf.pages)} pages, expected {pages}")
    seen = 0
    for n, page in enumerate(pdf.pages, 1):
        for font in fonts_of(page):
            seen += 1
            if not embedded(font):
                fail(f"page {n}: font {font.get('/BaseFont')} is not embedded")
    if seen == 0:
        fail("no fonts found on any page")

    if png:
        check_png(png)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
