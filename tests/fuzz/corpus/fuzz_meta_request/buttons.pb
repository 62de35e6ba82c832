k1ref-1*+62813000000018BPromo‚
stop: STOPŠ
Promo JuniÂYaÂTidak