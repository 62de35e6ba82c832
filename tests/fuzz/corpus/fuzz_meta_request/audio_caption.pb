k1ref-1*+62813000000018R1
	audio/ogghttps://example.com/a.ogg"	dengarkan