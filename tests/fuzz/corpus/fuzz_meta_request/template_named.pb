k1ref-1*+62813000000018J
promoidAnn:
first_name