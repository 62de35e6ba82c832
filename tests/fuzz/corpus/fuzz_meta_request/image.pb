k1ref-1*+62813000000018R-

image/jpeghttps://example.com/a.jpg"foto