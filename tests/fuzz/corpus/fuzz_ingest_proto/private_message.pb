
€Ð•ÿ¼1(2webjs-1@RQ
false_6281234567890@c.us_3EB06281234567890@c.us"BudiJHaloPX€Ð•ÿ¼1šchat