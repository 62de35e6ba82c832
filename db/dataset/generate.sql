-- db/dataset/generate.sql - the data set of the CRM read-path benchmark
-- (scripts/bench_reads.sh): 10 M messages in 1,000 workspaces at scale 1,
-- made in SQL alone, in the row shapes the services write.
--
-- Run it through scripts/make_dataset.sh (psql -v scale=S -f this file) on
-- a migrated database whose chats table is empty; it refuses anything else,
-- since it chooses ids and drops indexes and foreign keys on the way. Sizes
-- at scale 1, all multiplied by the scale:
--  - workspaces: one largest (20 % of the messages: 2 M, 200,000 contacts,
--    2,000 groups, 20 accounts), four large (500,000 messages each), the
--    rest small (60 % spread over them by a power law, about 4,000 to
--    60,000 messages each);
--  - a message belongs to a group one time in five (never on a Meta
--    account: the Cloud API has no groups), else to a contact. Within a
--    workspace conversations are skewed (a power of a uniform draw), so a
--    few contacts and groups hold thousands of messages and most hold a
--    handful; some contacts end up with none, as imported contacts do;
--  - message ids follow created_at, which covers the last 180 days and
--    grows denser towards now, so the table is in time order as a live
--    one is, and a walk over a workspace's newest messages reads what it
--    would read in production;
--  - bodies are 3 to 15 words drawn Zipf-like from a fixed vocabulary
--    (ds_core: a few words in most messages, the tail in under 1 %) plus
--    a rare tier (ds_rare: each word in 0.01 % to 0.8 % of messages) and
--    order numbers (INV-123456) in 1 % of the texts, so a full-text search
--    meets frequent words, rare words and near-unique tokens;
--  - receipts, reactions, unread messages, contacts' and groups' counters
--    as chat-sync keeps them (services/chat-sync: apply_message.c,
--    apply_receipt.c, apply_action.c, write.c);
--  - calls on the Meta numbers, about one per 20 messages of a
--    conversation, in the shapes blazz_call_report (0060) leaves them;
--  - usage on the Meta numbers, five priced counts a day each
--    (message_usage_priced, 0055);
--  - campaigns with their logs and webhook endpoints with their
--    deliveries, all finished or waiting far ahead, so that no service
--    running beside the benchmark picks any of them up.
-- At the end dataset.facts names what a benchmark needs (the largest
-- workspace, its id ranges, its busiest conversation, search terms that
-- match what they should).
--
-- Speed: one transaction (an error leaves the database as it was), and no
-- index or foreign key is maintained row by row: the indexes of the six
-- large tables, their unique constraints that no foreign key needs and
-- their foreign keys are saved, dropped, and made again from the saved
-- definitions once the rows are in (a sorted build per index, one join per
-- foreign key, instead of a random index insert and a trigger per row).
-- Counters are computed in one pass over chats and written with the rows
-- they belong to, so contacts and groups are written once, after chats.

\if :{?scale}
\else
\set scale 1
\endif
\set ON_ERROR_STOP 1

SET client_min_messages = warning;
SET maintenance_work_mem = '1GB';
SET max_parallel_maintenance_workers = 2;
-- the counters' hash aggregate over every conversation stays in memory
SET work_mem = '512MB';

SELECT extract(epoch FROM clock_timestamp()) AS ds_t0 \gset

BEGIN;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM chats) THEN
        RAISE EXCEPTION 'db/dataset/generate.sql: chats is not empty'
            USING DETAIL = 'The data set chooses ids and rebuilds indexes: it is made on an '
                           'empty migrated database only.',
                  HINT = 'Create a new database, apply db/migrations, run it again.';
    END IF;
END
$$;

-- ---- helpers (temporary: nothing of them stays) -------------------------------------

-- The first id free in t: above its rows and above what its sequence
-- handed out, so a later identity default never meets an id taken here.
CREATE FUNCTION pg_temp.ds_base(t regclass) RETURNS bigint
    LANGUAGE plpgsql
AS $$
DECLARE
    m bigint;
BEGIN
    EXECUTE format('SELECT coalesce(max(id), 0) FROM %s', t) INTO m;
    RETURN greatest(m, coalesce(pg_sequence_last_value(pg_get_serial_sequence(t::text, 'id')), 0));
END
$$;

-- The helpers below are one-expression SQL functions with constant arrays:
-- PostgreSQL inlines them and folds the arrays into constants, so a call
-- per word of 10 M messages costs an array subscript, not a function call.
-- A parameter is used once where the argument is random() (a parameter
-- used twice with a volatile argument would stop the inlining).

-- Zipf-like index in 1..n from a uniform u in [0, 1): floor((n + 1)^u)
-- is the inverse of the continuous 1/rank distribution.
CREATE FUNCTION pg_temp.ds_zipf(n integer, u double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE
    RETURN floor(power(n + 1, u))::integer;

-- Everyday chat words, most frequent first (Indonesian and English).
CREATE FUNCTION pg_temp.ds_core() RETURNS text[]
    LANGUAGE sql IMMUTABLE
    RETURN ARRAY[
        'ya', 'kak', 'terima', 'kasih', 'halo', 'ok', 'bisa', 'sudah', 'mau', 'order', 'min',
        'yang', 'ini', 'untuk', 'pesanan', 'ada', 'tidak', 'saya', 'kirim', 'barang', 'harga',
        'berapa', 'thanks', 'please', 'hi', 'stok', 'ready', 'dan', 'di', 'ke', 'dong', 'sih',
        'aja', 'juga', 'belum', 'sama', 'lagi', 'kapan', 'hari', 'invoice', 'bayar', 'transfer',
        'ongkir', 'alamat', 'resi', 'paket', 'sampai', 'besok', 'tolong', 'info', 'promo',
        'diskon', 'produk', 'warna', 'ukuran', 'size', 'cek', 'konfirmasi', 'pembayaran',
        'rekening', 'total', 'selamat', 'pagi', 'siang', 'sore', 'malam', 'baik', 'mohon', 'maaf',
        'tunggu', 'sebentar', 'oke', 'siap', 'sip', 'boleh', 'minta', 'nomor', 'pakai', 'via',
        'cod', 'the', 'you', 'is', 'for', 'to', 'and', 'can', 'i', 'we', 'your', 'my', 'it',
        'this', 'that', 'have', 'will', 'of', 'on', 'with', 'no', 'yes', 'thank', 'hello',
        'delivery', 'payment', 'price', 'stock', 'available', 'shipping', 'address', 'tracking',
        'confirm', 'receipt', 'discount', 'product', 'color', 'package', 'today', 'tomorrow',
        'morning', 'orders', 'kemarin', 'minggu', 'bulan', 'jam', 'nanti', 'sekarang', 'tadi',
        'udah', 'gak', 'nggak', 'enggak', 'kok', 'deh', 'loh', 'masih', 'dulu', 'kalau', 'jadi',
        'langsung', 'cepat', 'lama', 'lambat', 'murah', 'mahal', 'gratis', 'bonus', 'free', 'sale',
        'new', 'baru', 'kualitas', 'bekas', 'asli', 'original', 'hitam', 'putih', 'merah', 'biru',
        'hijau', 'kuning', 'abu', 'pink', 'coklat', 'navy', 'cream', 'silver', 'gold', 'satu',
        'dua', 'tiga', 'empat', 'lima', 'enam', 'tujuh', 'delapan', 'sembilan', 'sepuluh', 'pcs',
        'lusin', 'kodi', 'box', 'set', 'pack', 'unit', 'item', 'kurir', 'jne', 'jnt', 'sicepat',
        'anteraja', 'tiki', 'pos', 'gosend', 'grab', 'ninja', 'lion', 'wahana', 'express',
        'reguler', 'instan', 'sameday', 'retur', 'refund', 'tukar', 'komplain', 'rusak', 'cacat',
        'kurang', 'salah', 'lebih', 'kembali', 'ganti', 'garansi', 'servis', 'akun', 'login',
        'daftar', 'member', 'poin', 'voucher', 'kupon', 'kode', 'cashback', 'cicilan', 'kredit',
        'debit', 'qris', 'ovo', 'gopay', 'dana', 'shopeepay', 'linkaja', 'toko', 'gudang',
        'kantor', 'rumah', 'jalan', 'gang', 'rt', 'rw', 'kelurahan', 'kecamatan', 'kota',
        'kabupaten', 'provinsi', 'kodepos', 'patokan', 'admin', 'cs', 'agent', 'team', 'sales',
        'marketing', 'manager', 'owner', 'customer', 'pelanggan', 'reseller', 'dropship', 'agen',
        'distributor', 'grosir', 'eceran', 'katalog', 'foto', 'gambar', 'video', 'link', 'website',
        'aplikasi', 'update', 'cancel', 'batal', 'proses', 'dikemas', 'dikirim', 'diterima',
        'selesai', 'pending', 'stoknya', 'harganya', 'ongkirnya', 'alamatnya', 'pesan', 'chat',
        'balas', 'respon', 'kabar', 'senin', 'selasa', 'rabu', 'kamis', 'jumat', 'sabtu',
        'tanggal', 'jadwal', 'libur', 'buka', 'tutup'
    ];

-- Rare words: places and goods, each in a small fraction of messages.
CREATE FUNCTION pg_temp.ds_rare() RETURNS text[]
    LANGUAGE sql IMMUTABLE
    RETURN ARRAY[
        'bandung', 'surabaya', 'semarang', 'yogyakarta', 'makassar', 'medan', 'palembang',
        'denpasar', 'balikpapan', 'pontianak', 'manado', 'kupang', 'ambon', 'jayapura', 'mataram',
        'padang', 'pekanbaru', 'jambi', 'bengkulu', 'lampung', 'serang', 'cirebon', 'tasikmalaya',
        'garut', 'bogor', 'depok', 'bekasi', 'tangerang', 'karawang', 'purwakarta', 'sukabumi',
        'cianjur', 'malang', 'kediri', 'madiun', 'jember', 'banyuwangi', 'probolinggo', 'pasuruan',
        'mojokerto', 'sidoarjo', 'gresik', 'tuban', 'solo', 'klaten', 'magelang', 'salatiga',
        'kudus', 'jepara', 'pati', 'tegal', 'pekalongan', 'purwokerto', 'cilacap', 'kebumen',
        'samarinda', 'banjarmasin', 'palangkaraya', 'tarakan', 'kendari', 'palu', 'gorontalo',
        'ternate', 'sorong', 'merauke', 'batam', 'tanjungpinang', 'pangkalpinang', 'lhokseumawe',
        'aceh', 'sabang', 'bukittinggi', 'payakumbuh', 'sibolga', 'siantar', 'binjai', 'kulkas',
        'blender', 'setrika', 'kompor', 'dispenser', 'mixer', 'oven', 'microwave', 'televisi',
        'speaker', 'headset', 'powerbank', 'charger', 'casing', 'tripod', 'kipas', 'lemari',
        'kasur', 'bantal', 'sprei', 'selimut', 'handuk', 'gorden', 'karpet', 'sofa', 'meja',
        'kursi', 'rak', 'cermin', 'lampu', 'sepatu', 'sandal', 'kemeja', 'kaos', 'celana', 'jaket',
        'hoodie', 'rok', 'gamis', 'hijab', 'mukena', 'sarung', 'batik', 'kebaya'
    ];

-- One word: the rare tier takes 0.6 % of the draws.
CREATE FUNCTION pg_temp.ds_word(tier double precision, ur double precision,
                                uc double precision) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN CASE WHEN tier < 0.006
                THEN (pg_temp.ds_rare())[pg_temp.ds_zipf(cardinality(pg_temp.ds_rare()), ur)]
                ELSE (pg_temp.ds_core())[pg_temp.ds_zipf(cardinality(pg_temp.ds_core()), uc)]
           END;

CREATE FUNCTION pg_temp.ds_first_names() RETURNS text[]
    LANGUAGE sql IMMUTABLE
    RETURN ARRAY[
        'Budi', 'Siti', 'Agus', 'Dewi', 'Andi', 'Rina', 'Joko', 'Sri', 'Ahmad', 'Nur', 'Eko',
        'Wati', 'Dian', 'Indah', 'Putri', 'Rizky', 'Fajar', 'Ayu', 'Hendra', 'Yuni', 'Bambang',
        'Lestari', 'Arif', 'Fitri', 'Dedi', 'Maya', 'Hadi', 'Ratna', 'Rudi', 'Sari', 'Teguh',
        'Wulan', 'Bayu', 'Citra', 'Dimas', 'Eka', 'Fauzi', 'Gita', 'Hasan', 'Intan', 'Irfan',
        'Kurnia', 'Lina', 'Mega', 'Nanda', 'Oki', 'Pandu', 'Rahmat', 'Reza', 'Santi', 'Taufik',
        'Umar', 'Vina', 'Wahyu', 'Yoga', 'Zahra', 'Aditya', 'Bella', 'Cahya', 'Desi', 'Erna',
        'Farhan', 'Galih', 'Hana', 'Ilham', 'Jihan', 'Kevin', 'Laras', 'Michael', 'Nadia', 'Novi',
        'Ratih', 'Rini', 'Samuel', 'Tika', 'Tono', 'Vivi', 'Yanto', 'Yusuf', 'Anisa', 'Kartika',
        'Lukman', 'Mira', 'Nina', 'Oscar', 'Prasetyo', 'Rani', 'Sinta', 'Tri', 'Utami', 'Veronika',
        'Wawan', 'Yohanes', 'Zainal', 'David', 'Daniel', 'Grace', 'Jessica', 'Stefanus', 'Angela',
        'Kristina', 'Felix', 'Gilang', 'Guntur', 'Heru', 'Iwan', 'Jaka', 'Krisna', 'Lia', 'Made',
        'Ketut', 'Nyoman', 'Wayan', 'Komang', 'Gede', 'Putu', 'Kadek', 'Ani', 'Asep', 'Ujang',
        'Cecep', 'Dadang', 'Euis', 'Neneng', 'Iis'
    ];

CREATE FUNCTION pg_temp.ds_last_names() RETURNS text[]
    LANGUAGE sql IMMUTABLE
    RETURN ARRAY[
        'Santoso', 'Wijaya', 'Saputra', 'Hidayat', 'Pratama', 'Kusuma', 'Setiawan', 'Gunawan',
        'Susanto', 'Hartono', 'Nugroho', 'Purnomo', 'Halim', 'Tanjung', 'Siregar', 'Nasution',
        'Lubis', 'Harahap', 'Simanjuntak', 'Sitompul', 'Panjaitan', 'Hutapea', 'Manurung',
        'Sinaga', 'Situmorang', 'Pardede', 'Sembiring', 'Ginting', 'Tarigan', 'Wibowo', 'Utomo',
        'Rahman', 'Hakim', 'Ramadhan', 'Firmansyah', 'Kurniawan', 'Permana', 'Suryadi',
        'Syahputra', 'Maulana', 'Anggraini', 'Wulandari', 'Puspita', 'Handayani', 'Rahayu',
        'Safitri', 'Fitriani', 'Oktaviani', 'Salim', 'Tan', 'Lim', 'Wong', 'Chandra', 'Sutanto',
        'Tjahjono', 'Effendi', 'Hasibuan', 'Daulay', 'Pohan', 'Rangkuti', 'Batubara', 'Damanik',
        'Purba', 'Saragih', 'Napitupulu', 'Simatupang', 'Silalahi', 'Pasaribu', 'Marpaung',
        'Sihombing', 'Aritonang', 'Tambunan', 'Pakpahan', 'Gultom', 'Nainggolan', 'Siahaan',
        'Sianipar'
    ];

-- E.164 phone of person n: +62 8xx (operator prefixes weighted by how
-- often they occur) and 8 digits that are a bijection of n modulo 10^8
-- (48271 is prime to 10), so distinct contacts never share a phone.
CREATE FUNCTION pg_temp.ds_phone(n bigint) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN '+628' || (ARRAY['12', '12', '12', '12', '13', '13', '13', '11', '11', '21', '21',
                            '22', '22', '23', '52', '52', '53', '53', '51', '14', '15', '16',
                            '55', '56', '57', '58', '17', '18', '19', '59', '77', '78', '31',
                            '32', '38', '95', '96', '97', '98', '99'])[1 + (n % 40)::integer]
           || lpad(((n * 48271) % 100000000)::text, 8, '0');

-- Participant j (0-based) of group g, for participants and message senders.
CREATE FUNCTION pg_temp.ds_member_phone(g bigint, j integer) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN pg_temp.ds_phone(g * 1000 + j + 50000000);

CREATE FUNCTION pg_temp.ds_member_name(g bigint, j integer) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN (pg_temp.ds_first_names())[
               1 + ((g * 31 + j * 7) % cardinality(pg_temp.ds_first_names()))::integer];

-- A group's size, 3..256, most groups small: a Zipf-like draw from the
-- fractional part of g times the golden ratio (spread, and repeatable, so
-- the participants list and the senders of the messages agree).
CREATE FUNCTION pg_temp.ds_group_size(g bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE
    RETURN 2 + pg_temp.ds_zipf(254, (g * 0.6180339887498949::double precision)::numeric % 1);

CREATE FUNCTION pg_temp.ds_group_jid(g bigint) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN '120363' || lpad(g::text, 12, '0') || '@g.us';

-- An account's own number; 7919 is prime to 10, so numbers are unique.
CREATE FUNCTION pg_temp.ds_account_phone(a bigint) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN '+62811' || lpad(((a * 7919) % 10000000)::text, 7, '0');

CREATE FUNCTION pg_temp.ds_iso(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');

-- ---- the plan: sizes and id ranges per workspace --------------------------------------

CREATE TEMP TABLE ds_param AS
SELECT s AS scale,
       greatest(6, round(1000 * s))::integer AS n_ws,
       greatest(1000, round(10000000 * s))::bigint AS n_msgs,
       greatest(1, round(20000 * s))::integer AS campaign_recipients,
       greatest(1, round(200000 * s))::integer AS endpoint_deliveries,
       now() AS t_now,
       pg_temp.ds_base('workspaces') AS ws_base,
       pg_temp.ds_base('users') AS user_base,
       pg_temp.ds_base('whatsapp_accounts') AS acc_base,
       pg_temp.ds_base('contacts') AS contact_base,
       pg_temp.ds_base('whatsapp_groups') AS group_base,
       pg_temp.ds_base('chats') AS chat_base,
       pg_temp.ds_base('calls') AS call_base,
       pg_temp.ds_base('campaigns') AS campaign_base,
       pg_temp.ds_base('webhook_endpoints') AS endpoint_base
FROM (SELECT CAST(:'scale' AS numeric) AS s) p;

DO $$
BEGIN
    IF (SELECT NOT (scale > 0 AND scale <= 10) FROM ds_param) THEN
        RAISE EXCEPTION 'db/dataset/generate.sql: scale must be in (0, 10], not %',
            (SELECT scale FROM ds_param);
    END IF;
END
$$;

-- Workspace n: 1 is the largest, 2..5 the large ones, 6.. the small ones.
-- share is the fraction of all messages; a message picks its workspace by
-- inverting these shares (see the chats insert), so the small ones follow
-- k = floor(count * v^1.5) for a uniform v: share(k) is the difference of
-- the (2/3)-powers. Group messages are p_group of a workspace's, more than
-- 20 % where there can be groups so that they are 20 % of all; 8 messages
-- per contact and 200 per group on average, but the largest workspace has
-- the round 200,000 contacts and 2,000 groups at scale 1.
CREATE TEMP TABLE ds_ws AS
WITH w AS (
    SELECT n, n - 6 AS k, p.n_ws - 5 AS n_small, p.n_msgs, p.scale,
           CASE WHEN n = 1 THEN 'largest' WHEN n <= 5 THEN 'large' ELSE 'small' END AS tier
    FROM ds_param p, generate_series(1, p.n_ws) n
), s AS (
    SELECT w.*,
           CASE WHEN n = 1 THEN 0.2 WHEN n <= 5 THEN 0.05
                ELSE 0.6 * (power((k + 1)::double precision / n_small, 2.0 / 3)
                            - power(k::double precision / n_small, 2.0 / 3)) END AS share,
           tier = 'small' AND k % 7 = 3 AS meta_only,
           CASE tier WHEN 'largest' THEN 20 WHEN 'large' THEN 6 ELSE 1 + k % 3 END AS n_acc,
           CASE tier WHEN 'largest' THEN 20 WHEN 'large' THEN 8 ELSE 1 + k % 2 END AS n_users
    FROM w
), g AS (
    SELECT s.*,
           CASE WHEN meta_only THEN 0
                ELSE 0.2 / (1 - coalesce(sum(share) FILTER (WHERE meta_only) OVER (), 0)) END AS p_group
    FROM s
), c AS (
    SELECT g.*,
           greatest(1, CASE WHEN n = 1 THEN round(200000 * scale)
                            ELSE round(share * n_msgs * (1 - p_group) / 8) END)::integer
               AS n_contacts,
           CASE WHEN meta_only THEN 0
                ELSE greatest(1, CASE WHEN n = 1 THEN round(2000 * scale)
                                      ELSE round(share * n_msgs * p_group / 200) END)::integer
           END AS n_groups
    FROM g
)
SELECT c.*, p.ws_base + n AS id,
       (ARRAY['Toko', 'CV', 'PT', 'Butik', 'Warung', 'Grosir', 'Distributor', 'Apotek', 'Klinik',
              'Bengkel', 'Katering', 'Studio', 'Optik', 'Percetakan'])[1 + n % 14]
       || ' ' || (ARRAY['Maju', 'Jaya', 'Sentosa', 'Makmur', 'Abadi', 'Sejahtera', 'Berkah',
                        'Mandiri', 'Sukses', 'Lancar', 'Bersama', 'Indah', 'Mulia', 'Utama',
                        'Prima', 'Nusantara'])[1 + (n / 14) % 16]
       || ' ' || n AS name,
       p.acc_base + 1 + sum(n_acc) OVER (ORDER BY n) - n_acc AS a_lo,
       p.user_base + 1 + sum(n_users) OVER (ORDER BY n) - n_users AS u_lo,
       p.contact_base + 1 + sum(n_contacts) OVER (ORDER BY n) - n_contacts AS c_lo,
       p.group_base + 1 + sum(n_groups) OVER (ORDER BY n) - n_groups AS g_lo
FROM c, ds_param p;
ALTER TABLE ds_ws ADD PRIMARY KEY (n);
ANALYZE ds_ws;

-- Accounts: position 0 is the primary; every fourth is a Meta number (and
-- all of a meta-only workspace's), the others whatsapp-web.js sessions.
CREATE TEMP TABLE ds_acc AS
SELECT w.a_lo + pos AS id, w.id AS ws_id, w.n, pos,
       CASE WHEN w.meta_only OR pos % 4 = 3 THEN 'meta' ELSE 'webjs' END AS provider
FROM ds_ws w CROSS JOIN LATERAL generate_series(0, w.n_acc - 1) pos;
ALTER TABLE ds_acc ADD PRIMARY KEY (id);
ANALYZE ds_acc;

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: planned

-- ---- indexes, unique constraints and foreign keys off ---------------------------------

-- Unique constraints are saved only when no foreign key depends on their
-- index (the primary keys and the (workspace_id, id) keys stay).
CREATE TEMP TABLE ds_saved (ord serial, tbl regclass NOT NULL, kind text NOT NULL,
                            name text NOT NULL, def text NOT NULL);
INSERT INTO ds_saved (tbl, kind, name, def)
SELECT c.conrelid::regclass, 'fkey', c.conname,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid))
FROM pg_constraint c
WHERE c.contype = 'f'
  AND c.conrelid IN ('chats'::regclass, 'contacts'::regclass, 'whatsapp_groups'::regclass,
                     'calls'::regclass, 'campaign_logs'::regclass,
                     'webhook_retry_queue'::regclass)
ORDER BY c.conrelid::regclass::text, c.conname;
INSERT INTO ds_saved (tbl, kind, name, def)
SELECT c.conrelid::regclass, 'unique', c.conname, pg_get_indexdef(c.conindid)
FROM pg_constraint c
WHERE c.contype = 'u'
  AND c.conrelid IN ('chats'::regclass, 'contacts'::regclass, 'whatsapp_groups'::regclass,
                     'calls'::regclass, 'campaign_logs'::regclass,
                     'webhook_retry_queue'::regclass)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)
ORDER BY c.conrelid::regclass::text, c.conname;
INSERT INTO ds_saved (tbl, kind, name, def)
SELECT i.indrelid::regclass, 'index', ic.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid IN ('chats'::regclass, 'contacts'::regclass, 'whatsapp_groups'::regclass,
                     'calls'::regclass, 'campaign_logs'::regclass,
                     'webhook_retry_queue'::regclass)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                  WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)
ORDER BY i.indrelid::regclass::text, ic.relname;

DO $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT * FROM ds_saved ORDER BY ord LOOP
        IF s.kind = 'index' THEN
            EXECUTE format('DROP INDEX %s', s.name::regclass);
        ELSE
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', s.tbl, s.name);
        END IF;
    END LOOP;
END
$$;

-- Makes again what ds_saved holds of the kinds given for the tables given
-- (all tables when NULL): unique constraints first (an index, then the
-- constraint over it, under its old name), then the other indexes, then
-- foreign keys, which need the referenced rows in place and validate with
-- one join each.
CREATE FUNCTION pg_temp.ds_restore(tables regclass[], kinds text[]) RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT * FROM ds_saved
             WHERE (tables IS NULL OR tbl = ANY (tables)) AND kind = ANY (kinds)
             ORDER BY CASE kind WHEN 'unique' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, ord LOOP
        EXECUTE s.def;
        IF s.kind = 'unique' THEN
            EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE USING INDEX %I',
                           s.tbl, s.name, s.name);
        END IF;
        DELETE FROM ds_saved WHERE ord = s.ord;
    END LOOP;
END
$$;

-- ---- workspaces, users, accounts ------------------------------------------------------

INSERT INTO workspaces (id, name, timezone, metadata, created_at, updated_at)
SELECT w.id, w.name,
       CASE w.n % 10 WHEN 7 THEN 'Asia/Makassar' WHEN 9 THEN 'Asia/Jayapura' ELSE 'Asia/Jakarta' END,
       jsonb_build_object('dataset', 'crm-read', 'tier', w.tier),
       p.t_now - interval '400 days' + w.n * interval '1 minute',
       p.t_now - interval '30 days'
FROM ds_ws w, ds_param p;

INSERT INTO users (id, first_name, last_name, email, created_at, updated_at)
SELECT w.u_lo + j,
       (pg_temp.ds_first_names())[
           1 + ((w.u_lo + j) * 17 % cardinality(pg_temp.ds_first_names()))::integer],
       (pg_temp.ds_last_names())[
           1 + ((w.u_lo + j) * 13 % cardinality(pg_temp.ds_last_names()))::integer],
       'agent' || (w.u_lo + j) || '@ws' || w.id || '.dataset.example',
       p.t_now - interval '390 days', p.t_now - interval '30 days'
FROM ds_ws w CROSS JOIN LATERAL generate_series(0, w.n_users - 1) j, ds_param p;

INSERT INTO workspace_users (workspace_id, user_id, role, created_at)
SELECT w.id, w.u_lo + j, CASE WHEN j = 0 THEN 'admin' ELSE 'agent' END,
       p.t_now - interval '390 days'
FROM ds_ws w CROSS JOIN LATERAL generate_series(0, w.n_users - 1) j, ds_param p;

-- A few accounts are disconnected, recently: cleanup removes sessions
-- disconnected for 24 hours, and should find nothing of the data set to do
-- while a benchmark runs.
INSERT INTO whatsapp_accounts (id, workspace_id, session_id, phone_number, provider_type, status,
                               is_primary, last_activity_at, last_connected_at, disconnected_at,
                               disconnect_reason, health_score, metadata, created_by, created_at,
                               updated_at)
SELECT a.id, a.ws_id,
       CASE a.provider WHEN 'meta' THEN (100000000000000 + a.id)::text
                       ELSE 'webjs_' || a.ws_id || '_' || a.id END,
       pg_temp.ds_account_phone(a.id), a.provider,
       CASE WHEN a.pos > 0 AND a.id % 17 = 5 THEN 'disconnected' ELSE 'connected' END,
       a.pos = 0,
       p.t_now - (a.id % 60) * interval '1 minute',
       p.t_now - (1 + a.id % 20) * interval '1 day',
       CASE WHEN a.pos > 0 AND a.id % 17 = 5 THEN p.t_now - (1 + a.id % 5) * interval '1 hour' END,
       CASE WHEN a.pos > 0 AND a.id % 17 = 5 THEN 'timeout' END,
       90 + (a.id % 11)::integer,
       jsonb_build_object('sync_status', 'completed', 'last_sync_at',
                          pg_temp.ds_iso(p.t_now - (1 + a.id % 20) * interval '1 day'),
                          'push_name', w.name),
       w.u_lo, p.t_now - interval '200 days' + a.pos * interval '3 days', p.t_now - interval '1 day'
FROM ds_acc a JOIN ds_ws w ON w.n = a.n, ds_param p;

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: workspaces, users, accounts

-- ---- chats ----------------------------------------------------------------------------

-- Message t (1..n_msgs) has id chat_base + t and a created_at that grows
-- with t (age = 180 days * x^1.3 for x = the fraction of messages after
-- it: denser towards now), so ids are in time order. Every other choice
-- is a uniform draw made once per row in r (a subquery with random() in
-- its select list is not merged into the query above it, and OFFSET 0
-- keeps each level's columns computed once); m maps the draws to the
-- workspace, the conversation, the account and the direction; d to
-- statuses, times, body size and group sender; the top level writes the
-- row. Everything is inserted read; the unread messages are chosen after.
INSERT INTO chats (id, workspace_id, whatsapp_account_id, contact_id, group_id, wam_id, type,
                   provider_type, chat_type, message_status, status, metadata, is_read, sent_at,
                   delivered_at, read_at, user_id, created_at, updated_at)
SELECT d.id, d.ws_id, d.acct, d.contact_id, d.group_id,
       CASE WHEN d.provider = 'meta'
            THEN 'wamid.HBgM' || substr(d.peer_phone, 2) || 'FQIAERgS' || d.id_hex || 'AA=='
            ELSE CASE WHEN d.inbound THEN 'false_' ELSE 'true_' END || d.chat_jid || '_3EB0'
                 || d.id_hex
                 || CASE WHEN d.is_group AND d.inbound
                         THEN '_' || substr(d.sender_phone, 2) || '@c.us' ELSE '' END
       END,
       CASE WHEN d.inbound THEN 'inbound' ELSE 'outbound' END,
       d.provider,
       CASE WHEN d.is_group THEN 'group' ELSE 'private' END,
       d.message_status,
       -- the seeds' status: what the row was created with
       CASE WHEN d.inbound THEN 'delivered' ELSE 'sent' END,
       jsonb_strip_nulls(jsonb_build_object(
           'body', coalesce((SELECT string_agg(pg_temp.ds_word(random(), random(), random()), ' ')
                             FROM generate_series(1, d.n_words)), '')
                   || CASE WHEN d.order_no > 0 THEN ' INV-' || d.order_no ELSE '' END,
           'message_type', d.message_type,
           'contact_jid', CASE WHEN NOT d.is_group AND d.provider = 'webjs'
                               THEN substr(d.peer_phone, 2) || '@c.us' END,
           'sender_phone', d.sender_phone,
           'sender_name', d.sender_name,
           'has_media', CASE WHEN d.message_type <> 'text' THEN true END,
           'media', CASE WHEN d.message_type <> 'text'
                         THEN jsonb_build_object('mime_type', d.mime_type,
                                                 'size_bytes', d.media_size) END,
           'reactions', CASE WHEN d.reacted_at IS NOT NULL
                             THEN jsonb_build_object(d.reactor, jsonb_build_object(
                                      'emoji', d.emoji, 'reacted_at', pg_temp.ds_iso(d.reacted_at)))
                        END,
           'reaction_clock', CASE WHEN d.reacted_at IS NOT NULL
                                  THEN jsonb_build_object(d.reactor,
                                           (extract(epoch FROM d.reacted_at) * 1000)::bigint)
                             END)),
       true,
       CASE WHEN NOT d.inbound THEN d.created_at END,
       d.delivered_at, d.read_at, d.user_id, d.created_at,
       greatest(d.created_at, d.delivered_at, d.read_at, d.reacted_at)
FROM (
    SELECT m.*,
           upper(lpad(to_hex(m.id), 12, '0') || substr(md5(m.id::text), 1, 8)) AS id_hex,
           CASE WHEN m.is_group THEN pg_temp.ds_group_jid(m.group_id)
                ELSE substr(pg_temp.ds_phone(m.contact_id), 2) || '@c.us' END AS chat_jid,
           CASE WHEN NOT m.is_group THEN pg_temp.ds_phone(m.contact_id)
                ELSE pg_temp.ds_group_jid(m.group_id) END AS peer_phone,
           CASE WHEN NOT m.is_group THEN NULL
                WHEN m.inbound THEN pg_temp.ds_member_phone(m.group_id, m.member)
                ELSE pg_temp.ds_account_phone(m.acct) END AS sender_phone,
           CASE WHEN NOT m.is_group THEN NULL
                WHEN m.inbound THEN pg_temp.ds_member_name(m.group_id, m.member)
                ELSE m.ws_name END AS sender_name,
           CASE WHEN m.inbound THEN 'delivered'
                WHEN m.u_status < 0.62 THEN 'read'
                WHEN m.u_status < 0.92 THEN 'delivered'
                ELSE 'sent' END AS message_status,
           CASE WHEN NOT m.inbound AND m.u_status < 0.92
                THEN least(m.t_now, m.created_at + (1 + 30 * m.u_delay ^ 2) * interval '1 second')
           END AS delivered_at,
           CASE WHEN m.inbound
                THEN least(m.t_now, m.created_at + (10 + 7200 * m.u_read ^ 3) * interval '1 second')
                WHEN m.u_status < 0.62
                THEN least(m.t_now, m.created_at + (1 + 30 * m.u_delay ^ 2) * interval '1 second'
                                    + (5 + 21600 * m.u_read ^ 3) * interval '1 second')
           END AS read_at,
           -- an agent's message sent through the CRM carries the agent
           CASE WHEN NOT m.inbound AND m.u_user < 0.6
                THEN m.u_lo + floor(m.u_user / 0.6 * m.n_users)::integer END AS user_id,
           CASE WHEN m.u_type < 0.86 THEN 'text' WHEN m.u_type < 0.93 THEN 'image'
                WHEN m.u_type < 0.95 THEN 'document' WHEN m.u_type < 0.98 THEN 'voice'
                WHEN m.u_type < 0.99 THEN 'sticker' ELSE 'video' END AS message_type,
           CASE WHEN m.u_type < 0.93 THEN 'image/jpeg' WHEN m.u_type < 0.95 THEN 'application/pdf'
                WHEN m.u_type < 0.98 THEN 'audio/ogg; codecs=opus'
                WHEN m.u_type < 0.99 THEN 'image/webp' ELSE 'video/mp4' END AS mime_type,
           (20000 + 2000000 * m.u_words ^ 2)::integer AS media_size,
           -- texts 3..15 words; four captions in ten images or videos 2..5
           CASE WHEN m.u_type < 0.86 THEN 3 + floor(m.u_words * 13)::integer
                WHEN (m.u_type < 0.93 OR m.u_type >= 0.99) AND m.u_words < 0.4
                THEN 2 + floor(m.u_words * 10)::integer
                ELSE 0 END AS n_words,
           CASE WHEN m.u_type < 0.86 AND m.u_order < 0.01
                THEN 100000 + floor(m.u_order * 90000000)::integer ELSE 0 END AS order_no,
           -- a reaction by the other side: the account to an inbound
           -- message, the contact or a member to an outbound one
           CASE WHEN m.u_react < 0.02
                THEN least(m.t_now, m.created_at + (60 + 3600 * m.u_read) * interval '1 second')
           END AS reacted_at,
           CASE WHEN m.inbound THEN 'me'
                WHEN m.is_group THEN pg_temp.ds_member_phone(m.group_id, m.member)
                ELSE pg_temp.ds_phone(m.contact_id) END AS reactor,
           (ARRAY[U&'\+01F44D', U&'\2764\FE0F', U&'\+01F602', U&'\+01F64F', U&'\+01F62E',
                  U&'\+01F622'])[1 + floor(m.u_react * 300)::integer % 6] AS emoji
    FROM (
        SELECT r.id, r.created_at, r.t_now, w.id AS ws_id, w.name AS ws_name, w.u_lo, w.n_users,
               x.is_group,
               CASE WHEN NOT x.is_group THEN w.c_lo + x.idx END AS contact_id,
               CASE WHEN x.is_group THEN w.g_lo + x.idx END AS group_id,
               w.a_lo + x.pos AS acct,
               CASE WHEN w.meta_only OR x.pos % 4 = 3 THEN 'meta' ELSE 'webjs' END AS provider,
               r.u_dir < CASE WHEN x.is_group THEN 0.8 ELSE 0.49 END AS inbound,
               CASE WHEN x.is_group
                    THEN floor(r.u_member * pg_temp.ds_group_size(w.g_lo + x.idx))::integer
               END AS member,
               r.u_status, r.u_delay, r.u_read, r.u_user, r.u_type, r.u_words, r.u_order,
               r.u_react
        FROM (
            SELECT p.chat_base + t AS id, p.t_now, p.n_ws,
                   date_trunc('milliseconds',
                              p.t_now - 15552000
                                        * power((p.n_msgs - t)::double precision / p.n_msgs, 1.3)
                                        * interval '1 second') AS created_at,
                   random() AS u_ws, random() AS u_group, random() AS u_conv, random() AS u_home,
                   random() AS u_acct, random() AS u_dir, random() AS u_member,
                   random() AS u_status, random() AS u_delay, random() AS u_read,
                   random() AS u_user, random() AS u_type, random() AS u_words,
                   random() AS u_order, random() AS u_react
            FROM ds_param p, generate_series(1, p.n_msgs) t
            OFFSET 0
        ) r
        JOIN ds_ws w ON w.n = least(r.n_ws, CASE
            WHEN r.u_ws < 0.2 THEN 1
            WHEN r.u_ws < 0.4 THEN least(5, 2 + floor((r.u_ws - 0.2) / 0.05)::integer)
            ELSE 6 + floor((r.n_ws - 5) * power((r.u_ws - 0.4) / 0.6, 1.5))::integer END)
        -- the conversation: index idx among the workspace's contacts (or
        -- groups), skewed towards the first; its account: the
        -- conversation's own one (idx modulo the accounts) nine times in
        -- ten, any other the tenth time; groups only on webjs accounts,
        -- the positions that are not 3 modulo 4
        CROSS JOIN LATERAL (
            SELECT r.u_group < w.p_group AS is_group) g
        CROSS JOIN LATERAL (
            SELECT g.is_group,
                   CASE WHEN g.is_group THEN floor(w.n_groups * r.u_conv ^ 2)::integer
                        ELSE floor(w.n_contacts * r.u_conv ^ 2.5)::integer END AS idx) i
        CROSS JOIN LATERAL (
            SELECT i.is_group, i.idx,
                   CASE WHEN NOT i.is_group
                        THEN CASE WHEN r.u_home < 0.9 THEN i.idx % w.n_acc
                                  ELSE floor(r.u_acct * w.n_acc)::integer END
                        ELSE k + k / 3 END AS pos
            FROM (SELECT CASE WHEN r.u_home < 0.95 THEN i.idx % (w.n_acc - w.n_acc / 4)
                              ELSE floor(r.u_acct * (w.n_acc - w.n_acc / 4))::integer END AS k) kk
        ) x
        OFFSET 0
    ) m
    OFFSET 0
) d;

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: chats inserted

ANALYZE chats;
SELECT pg_temp.ds_restore(ARRAY['chats'::regclass], ARRAY['unique', 'index']) \g /dev/null

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: chats indexed

-- ---- counters -------------------------------------------------------------------------

-- One pass over chats: per conversation its message count, first and
-- latest message and its latest outbound one; per account its messages.
-- ids follow created_at, so the latest message is the one with the
-- highest id (what chat-sync's "created_at DESC, id DESC" picks) and a
-- key id * 10^6 + account offset carries its account through max().
-- Hashed, not sorted: with statistics the planner prefers sorting the
-- table twice, several times slower.
SET enable_sort = off;
CREATE TEMP TABLE ds_conv AS
SELECT GROUPING(c.whatsapp_account_id) = 1 AS by_conversation,
       c.contact_id, c.group_id, c.whatsapp_account_id, count(*) AS n,
       (SELECT acc_base FROM ds_param)
       + min(c.id * 1000000 + (c.whatsapp_account_id - (SELECT acc_base FROM ds_param))) % 1000000
           AS first_acct,
       (SELECT acc_base FROM ds_param)
       + max(c.id * 1000000 + (c.whatsapp_account_id - (SELECT acc_base FROM ds_param))) % 1000000
           AS last_acct,
       min(c.created_at) AS first_at, max(c.created_at) AS latest_at,
       max(c.created_at) FILTER (WHERE c.type = 'outbound') AS last_out_at
FROM chats c
GROUP BY GROUPING SETS ((c.contact_id, c.group_id), (c.whatsapp_account_id));
RESET enable_sort;
CREATE INDEX ON ds_conv (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX ON ds_conv (group_id) WHERE group_id IS NOT NULL;
ANALYZE ds_conv;

-- Unread: about one conversation in ten (by a hash of its id) has not
-- been opened since its customer wrote: its inbound messages after the
-- last outbound one, within the last two days of the conversation (six
-- hours for a group), stay unread. Where the conversation ended with an
-- outbound message nothing is, so about 5 % of conversations have unread
-- messages, a few each. A contact's count is what the update changed.
CREATE TEMP TABLE ds_unread (contact_id bigint PRIMARY KEY, n integer NOT NULL);
WITH f AS (
    SELECT contact_id,
           greatest(coalesce(last_out_at, '-infinity'), latest_at - interval '2 days') AS after
    FROM ds_conv
    WHERE by_conversation AND contact_id IS NOT NULL AND (hashint8(contact_id) & 1023) < 102
), u AS (
    UPDATE chats c SET is_read = false, read_at = NULL, updated_at = c.created_at
    FROM f
    WHERE c.contact_id = f.contact_id AND c.created_at > f.after AND c.type = 'inbound'
    RETURNING c.contact_id
)
INSERT INTO ds_unread SELECT contact_id, count(*) FROM u GROUP BY contact_id;

WITH f AS (
    SELECT group_id,
           greatest(coalesce(last_out_at, '-infinity'), latest_at - interval '6 hours') AS after
    FROM ds_conv
    WHERE by_conversation AND group_id IS NOT NULL AND (hashint8(-group_id) & 1023) < 102
)
UPDATE chats c SET is_read = false, read_at = NULL, updated_at = c.created_at
FROM f
WHERE c.group_id = f.group_id AND c.created_at > f.after AND c.type = 'inbound';

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: counters computed, unread messages marked

-- ---- contacts and groups, with their counters -----------------------------------------

-- chat-sync creates a contact with its first message (source_session_id
-- and source_type from that message's account, the jid in metadata) and
-- moves whatsapp_account_id to the account of the latest one; a contact
-- without messages was imported by hand (source_type manual). Names are
-- the CRM's: first and last name three times in four, a first name only,
-- or none (the push name was empty).
INSERT INTO contacts (id, workspace_id, whatsapp_account_id, source_session_id, source_type,
                      provider_type, first_name, last_name, phone, email, unread_messages,
                      latest_chat_created_at, last_message_at, metadata, created_at, updated_at)
SELECT y.id, y.ws_id, y.last_acct, y.first_acct, coalesce(y.provider, 'manual'), y.provider,
       y.first_name, y.last_name, y.phone,
       CASE WHEN y.u_email < 0.1 AND y.first_name IS NOT NULL
            THEN lower(y.first_name) || '.' || y.id || '@mail.example' END,
       coalesce(y.unread, 0), y.latest_at, y.latest_at,
       CASE WHEN y.provider = 'webjs' THEN jsonb_build_object('jid', substr(y.phone, 2) || '@c.us')
            ELSE '{}'::jsonb END,
       y.created_at, coalesce(y.latest_at, y.created_at)
FROM (
    SELECT x.*,
           CASE WHEN x.u_name < 0.9
                THEN (pg_temp.ds_first_names())[
                         pg_temp.ds_zipf(cardinality(pg_temp.ds_first_names()), x.u_first)]
           END AS first_name,
           CASE WHEN x.u_name < 0.75
                THEN (pg_temp.ds_last_names())[
                         pg_temp.ds_zipf(cardinality(pg_temp.ds_last_names()), x.u_last)]
           END AS last_name
    FROM (
        SELECT w.c_lo + i AS id, w.id AS ws_id, pg_temp.ds_phone(w.c_lo + i) AS phone,
               a.first_acct, a.last_acct, a.latest_at, acc.provider, u.n AS unread,
               coalesce(a.first_at, p.t_now - random() * interval '180 days') AS created_at,
               random() AS u_name, random() AS u_first, random() AS u_last, random() AS u_email
        FROM ds_ws w
        CROSS JOIN LATERAL generate_series(0, w.n_contacts - 1) i
        CROSS JOIN ds_param p
        LEFT JOIN ds_conv a ON a.by_conversation AND a.contact_id = w.c_lo + i
        LEFT JOIN ds_acc acc ON acc.id = a.first_acct
        LEFT JOIN ds_unread u ON u.contact_id = w.c_lo + i
        OFFSET 0
    ) x
) y;

-- Groups as chat-sync keeps them: participants [{phone, name, isAdmin,
-- joinedAt}] with participants_count, the latest message's time and
-- account. A group that got no message keeps its conversation's account.
INSERT INTO whatsapp_groups (id, workspace_id, whatsapp_account_id, group_jid, name, description,
                             owner_phone, participants, participants_count, invite_code, settings,
                             group_created_at, latest_chat_created_at, created_at, updated_at)
SELECT y.id, y.ws_id, y.acct, pg_temp.ds_group_jid(y.id), y.name,
       CASE WHEN y.id % 3 = 0 THEN 'Grup ' || y.name || ': info, order dan promo' END,
       pg_temp.ds_member_phone(y.id, 0), pt.participants, y.size,
       upper(substr(md5('invite' || y.id), 1, 22)),
       jsonb_build_object('announce', y.id % 5 = 0, 'restrict', y.id % 2 = 0),
       y.created_at - interval '30 days', y.latest_at, y.created_at,
       coalesce(y.latest_at, y.created_at)
FROM (
    SELECT w.g_lo + i AS id, w.id AS ws_id, pg_temp.ds_group_size(w.g_lo + i) AS size,
           coalesce(a.last_acct, w.a_lo + (i % (w.n_acc - w.n_acc / 4))
                                 + (i % (w.n_acc - w.n_acc / 4)) / 3) AS acct,
           a.latest_at, coalesce(a.first_at, p.t_now - interval '100 days') AS created_at,
           (ARRAY['Reseller', 'Grosir', 'Komunitas', 'Pelanggan', 'Promo', 'Dropship', 'Tim',
                  'Keluarga', 'Alumni', 'Arisan', 'Info', 'Order', 'Supplier', 'Member'])[1 + i % 14]
           || ' ' || initcap((pg_temp.ds_rare())[1 + (i / 14) % 60])
           || CASE WHEN i >= 14 * 60 THEN ' ' || (i / (14 * 60) + 1) ELSE '' END AS name
    FROM ds_ws w
    CROSS JOIN LATERAL generate_series(0, w.n_groups - 1) i
    CROSS JOIN ds_param p
    LEFT JOIN ds_conv a ON a.by_conversation AND a.group_id = w.g_lo + i
) y
CROSS JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_object(
               'phone', pg_temp.ds_member_phone(y.id, j), 'name', pg_temp.ds_member_name(y.id, j),
               'isAdmin', j < 2, 'joinedAt', pg_temp.ds_iso(y.created_at - interval '30 days'
                                                             + j * interval '1 hour'))
               ORDER BY j) AS participants
    FROM generate_series(0, y.size - 1) j
) pt;

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: contacts and groups inserted

-- ---- calls ----------------------------------------------------------------------------

-- Calls reach Meta numbers only (0060): a contact's go through the Meta
-- account of its conversation's position (every fourth account, any of a
-- meta-only workspace's), so a workspace without one has none. A
-- conversation of n messages has floor(n / 20 + u) calls, n / 20 on
-- average, so the busiest conversations have pages of them; they fall in
-- its lifetime and an hour before now at the latest, so the longest has
-- ended. Each row is what blazz_call_report leaves of Meta's facts: the
-- connect made it (connected_at: its created_at in Meta's whole seconds);
-- a terminate's outcome (completed, with start, end and length; failed,
-- unanswered or refused, with an error one time in four) where it came,
-- else the highest status seen (an outbound call's accepted or rejected,
-- or ringing: a terminate that never arrived). ids follow created_at, as
-- chats' do.
INSERT INTO calls (id, workspace_id, whatsapp_account_id, contact_id, meta_call_id, direction,
                   status, connected_at, started_at, ended_at, terminated_at, duration_s,
                   error_code, error_message, created_at, updated_at)
SELECT c.call_base + row_number() OVER (ORDER BY c.created_at, c.contact_id, c.call_no),
       c.ws_id, c.acct, c.contact_id,
       'wacid.HBgL' || substr(pg_temp.ds_phone(c.contact_id), 2) || 'FQIAEhgg'
       || upper(md5(c.contact_id || '/' || c.call_no)),
       c.direction, c.status, c.connected_at,
       CASE WHEN c.status = 'completed' THEN c.answered_at END,
       CASE WHEN c.status = 'completed' THEN c.answered_at + c.duration_s * interval '1 second'
            WHEN c.status = 'failed' THEN c.answered_at END,
       CASE WHEN c.status = 'completed' THEN c.answered_at + c.duration_s * interval '1 second'
            WHEN c.status = 'failed' THEN c.answered_at END,
       CASE WHEN c.status = 'completed' THEN c.duration_s END,
       CASE WHEN c.status = 'failed' AND c.u_err < 0.25
            THEN (ARRAY['131000', '138001'])[1 + floor(c.u_err * 8)::integer] END,
       CASE WHEN c.status = 'failed' AND c.u_err < 0.25
            THEN (ARRAY['Something went wrong',
                        'Receiver unable to receive calls'])[1 + floor(c.u_err * 8)::integer] END,
       c.created_at,
       CASE WHEN c.status = 'completed' THEN c.answered_at + c.duration_s * interval '1 second'
            WHEN c.status = 'ringing' THEN c.created_at
            ELSE greatest(c.created_at, c.answered_at) END
FROM (
    SELECT y.*,
           CASE WHEN y.direction = 'inbound'
                THEN CASE WHEN y.u_status < 0.62 THEN 'completed'
                          WHEN y.u_status < 0.97 THEN 'failed' ELSE 'ringing' END
                ELSE CASE WHEN y.u_status < 0.50 THEN 'completed'
                          WHEN y.u_status < 0.90 THEN 'failed'
                          WHEN y.u_status < 0.95 THEN 'rejected'
                          WHEN y.u_status < 0.98 THEN 'accepted' ELSE 'ringing' END
           END AS status,
           -- Meta's times are whole seconds; the row's own is when it was made
           date_trunc('second', y.created_at) AS connected_at,
           -- answered, refused or given up on, after ringing 2 to 40 s
           date_trunc('second', y.created_at) + (2 + floor(38 * y.u_ring ^ 2)) * interval '1 second'
               AS answered_at,
           (5 + floor(1800 * y.u_len ^ 3))::integer AS duration_s
    FROM (
        SELECT v.contact_id, v.ws_id, s.call_no, p.call_base, v.acct,
               CASE WHEN random() < 0.75 THEN 'inbound' ELSE 'outbound' END AS direction,
               date_trunc('milliseconds',
                          least(p.t_now - interval '1 hour',
                                v.first_at + (v.latest_at - v.first_at) * random())) AS created_at,
               random() AS u_status, random() AS u_ring, random() AS u_len, random() AS u_err
        FROM (
            -- the draw is made here, once per conversation: drawn in the
            -- call to generate_series, a Memoize node keyed by n would
            -- hand every conversation of the same length the first one's
            SELECT v.contact_id, v.first_at, v.latest_at, w.id AS ws_id,
                   CASE WHEN w.meta_only THEN w.a_lo + (v.contact_id - w.c_lo) % w.n_acc
                        ELSE w.a_lo + 3 + 4 * ((v.contact_id - w.c_lo) % (w.n_acc / 4))
                   END AS acct,
                   floor(v.n / 20.0::double precision + random())::integer AS n_calls
            FROM ds_conv v
            JOIN ds_acc a ON a.id = v.last_acct
            JOIN ds_ws w ON w.n = a.n
            WHERE v.by_conversation AND v.contact_id IS NOT NULL
              AND (w.meta_only OR w.n_acc >= 4)
            OFFSET 0
        ) v
        CROSS JOIN ds_param p
        CROSS JOIN LATERAL generate_series(1, v.n_calls) s(call_no)
        OFFSET 0
    ) y
    OFFSET 0
) c;

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: calls

-- ---- usage -----------------------------------------------------------------------------

-- What each Meta number delivered a day over the 180 days, as chat-sync
-- counts it in message_usage_priced (0055) under per-message pricing: per
-- category and pricing type, charged (regular) and free, from one to a
-- few hundred a day. Five rows a number a day: small beside chats.
INSERT INTO message_usage_priced (whatsapp_account_id, day, category, pricing_type,
                                  pricing_model, workspace_id, delivered)
SELECT a.id, (p.t_now - d * interval '1 day')::date, k.category, k.pricing_type, 'PMP',
       a.workspace_id, 1 + floor(random() * k.most)::bigint
FROM whatsapp_accounts a
CROSS JOIN ds_param p
CROSS JOIN generate_series(0, 179) d
CROSS JOIN (VALUES ('marketing', 'regular', 200), ('marketing', 'free_entry_point', 20),
                   ('utility', 'regular', 80), ('utility', 'free_customer_service', 40),
                   ('service', 'free_customer_service', 300)) k(category, pricing_type, most)
WHERE a.provider_type = 'meta';
ANALYZE message_usage_priced;

-- ---- campaigns ------------------------------------------------------------------------

-- The largest workspace ran 10 campaigns of campaign_recipients contacts
-- each; every other even-numbered workspace one to three, to 30 % of its
-- contacts. All are over (completed, one cancelled), their logs final:
-- campaign-sender beside a benchmark must find nothing to send.
CREATE TEMP TABLE ds_camp AS
SELECT p.campaign_base + row_number() OVER (ORDER BY w.n, c) AS id, w.id AS ws_id, w.n, c,
       w.a_lo + c % w.n_acc AS acct, w.c_lo, w.n_contacts,
       least(w.n_contacts, CASE WHEN w.n = 1 THEN p.campaign_recipients
                                ELSE greatest(1, round(w.n_contacts * 0.3))::integer END) AS recipients,
       p.t_now - (5 + c * 15 + w.n % 10) * interval '1 day' AS started_at
FROM ds_ws w, ds_param p,
     LATERAL generate_series(0, CASE WHEN w.n = 1 THEN 9 WHEN w.n % 2 = 0 THEN w.n % 3 ELSE -1 END) c;

INSERT INTO campaigns (id, workspace_id, whatsapp_account_id, name, campaign_type,
                       preferred_provider, message_content, body_text, status, started_at,
                       completed_at, cancelled_at, created_by, created_at, updated_at)
SELECT c.id, c.ws_id, c.acct,
       (ARRAY['Promo Ramadan', 'Flash Sale', 'Restock', 'Harbolnas', 'Payday Sale', 'Tahun Baru',
              'Lebaran', 'Akhir Bulan', 'Member Day', 'Cuci Gudang'])[1 + c.c % 10] || ' ' || (c.c + 1),
       'instant', a.provider,
       'Halo {{name}}, ada promo spesial minggu ini. Balas YA untuk info lengkap.',
       'Halo {{name}}, ada promo spesial minggu ini. Balas YA untuk info lengkap.',
       CASE WHEN c.n = 1 AND c.c = 9 THEN 'cancelled' ELSE 'completed' END,
       c.started_at,
       CASE WHEN NOT (c.n = 1 AND c.c = 9) THEN c.started_at + c.recipients * interval '500 ms'
                                                 + interval '1 hour' END,
       CASE WHEN c.n = 1 AND c.c = 9 THEN c.started_at + c.recipients * interval '500 ms' END,
       w.u_lo, c.started_at - interval '1 day', c.started_at + c.recipients * interval '500 ms'
FROM ds_camp c JOIN ds_acc a ON a.id = c.acct JOIN ds_ws w ON w.n = c.n;

-- Recipient k of a campaign is the contact k places after an offset, so
-- each campaign reaches distinct contacts. 40 % read, 38 % delivered, 15 %
-- only sent, 7 % failed.
INSERT INTO campaign_logs (workspace_id, campaign_id, whatsapp_account_id, contact_id, wam_id,
                           status, error_message, queued_at, sent_at, delivered_at, read_at,
                           failed_at, created_at, updated_at)
SELECT l.ws_id, l.campaign_id, l.acct, l.contact_id,
       CASE WHEN l.status <> 'failed' THEN
           CASE WHEN l.provider = 'meta'
                THEN 'wamid.HBgM' || substr(pg_temp.ds_phone(l.contact_id), 2) || 'FQIAERgS'
                     || upper(lpad(to_hex(l.campaign_id), 6, '0') || lpad(to_hex(l.contact_id), 10, '0'))
                     || 'AA=='
                ELSE 'true_' || substr(pg_temp.ds_phone(l.contact_id), 2) || '@c.us_3EB0'
                     || upper(lpad(to_hex(l.campaign_id), 6, '0') || lpad(to_hex(l.contact_id), 10, '0'))
           END
       END,
       l.status,
       CASE WHEN l.status = 'failed'
            THEN (ARRAY['131026: Message undeliverable', '131047: Re-engagement message',
                        '131049: Meta chose not to deliver', 'no_connected_account'])[1 + l.k % 4]
       END,
       l.queued_at,
       CASE WHEN l.status <> 'failed' THEN l.queued_at + interval '2 seconds' END,
       CASE WHEN l.status IN ('delivered', 'read') THEN l.queued_at + interval '20 seconds' END,
       CASE WHEN l.status = 'read'
            THEN least(l.t_now, l.queued_at + (60 + 86400 * l.u ^ 3) * interval '1 second') END,
       CASE WHEN l.status = 'failed' THEN l.queued_at + interval '5 seconds' END,
       l.started_at - interval '1 minute',
       CASE l.status
           WHEN 'read' THEN least(l.t_now, l.queued_at + (60 + 86400 * l.u ^ 3) * interval '1 second')
           WHEN 'delivered' THEN l.queued_at + interval '20 seconds'
           WHEN 'sent' THEN l.queued_at + interval '2 seconds'
           ELSE l.queued_at + interval '5 seconds' END
FROM (
    SELECT s.*,
           CASE WHEN s.u < 0.40 THEN 'read' WHEN s.u < 0.78 THEN 'delivered'
                WHEN s.u < 0.93 THEN 'sent' ELSE 'failed' END AS status
    FROM (
        SELECT c.ws_id, c.id AS campaign_id, c.acct, a.provider, c.started_at, p.t_now, k,
               c.c_lo + (c.c * 7919 + k) % c.n_contacts AS contact_id,
               c.started_at + k * interval '500 ms' AS queued_at, random() AS u
        FROM ds_camp c
        JOIN ds_acc a ON a.id = c.acct
        CROSS JOIN ds_param p
        CROSS JOIN LATERAL generate_series(0, c.recipients - 1) k
        OFFSET 0
    ) s
) l;

-- the counters campaign-sender keeps: each step counts the logs at or past it
UPDATE campaigns c
SET contacts_count = s.total, messages_sent = s.sent, messages_delivered = s.delivered,
    messages_read = s.read, messages_failed = s.failed
FROM (SELECT campaign_id, count(*) AS total,
             count(*) FILTER (WHERE status IN ('sent', 'delivered', 'read')) AS sent,
             count(*) FILTER (WHERE status IN ('delivered', 'read')) AS delivered,
             count(*) FILTER (WHERE status = 'read') AS read,
             count(*) FILTER (WHERE status = 'failed') AS failed
      FROM campaign_logs WHERE campaign_id IN (SELECT id FROM ds_camp) GROUP BY campaign_id) s
WHERE c.id = s.campaign_id;

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: campaigns

-- ---- webhooks -------------------------------------------------------------------------

-- The largest workspace has its CRM's endpoint (endpoint_deliveries
-- deliveries) and an analytics one for message.created (a tenth of that);
-- every third other workspace one endpoint with deliveries for 2 % of its
-- messages. Deliveries span the last 25 days: cleanup purges successful
-- ones after 30.
CREATE TEMP TABLE ds_ep AS
SELECT p.endpoint_base + row_number() OVER (ORDER BY w.n, e) AS id, w.id AS ws_id, w.n, e,
       w.a_lo, w.n_acc,
       CASE WHEN w.n = 1 AND e = 0 THEN p.endpoint_deliveries
            WHEN w.n = 1 THEN greatest(1, p.endpoint_deliveries / 10)
            ELSE greatest(1, round(w.share * p.n_msgs * 0.02))::integer END AS deliveries,
       CASE WHEN e = 0 THEN 'http://127.0.0.1:9/hooks/blazz/' || w.id || '/events'
            ELSE 'http://127.0.0.1:9/analytics/whatsapp/' || w.id END AS url,
       CASE WHEN e = 0 THEN ARRAY['*'] ELSE ARRAY['message.created'] END AS event_types
FROM ds_ws w, ds_param p,
     LATERAL generate_series(0, CASE WHEN w.n = 1 THEN 1 WHEN w.n % 3 = 1 THEN 0 ELSE -1 END) e;

-- Secrets in the sealed form of 0025 (0x01, key id length, key id, nonce,
-- ciphertext, tag), from md5s: nothing opens them, nothing needs to.
INSERT INTO webhook_endpoints (id, workspace_id, name, url, secret_ciphertext, secret_nonce,
                               event_types, signature_scheme, last_success_at, last_status_code,
                               created_at, updated_at)
SELECT e.id, e.ws_id, CASE WHEN e.e = 0 THEN 'CRM' ELSE 'Analytics' END, e.url,
       decode('01' || '02' || encode('k1', 'hex') || md5('nonce' || e.id) || md5('secret' || e.id)
              || md5('tag' || e.id), 'hex'),
       NULL, e.event_types, 'standard', p.t_now - interval '2 minutes', 200,
       p.t_now - interval '300 days', p.t_now - interval '2 minutes'
FROM ds_ep e, ds_param p;

-- 93 % delivered, 4 % failed for good after 8 retries, 3 % pending. A
-- pending delivery is due 30 days ahead (a long backoff), so no dispatcher
-- beside a benchmark tries to send it to these made-up URLs.
INSERT INTO webhook_retry_queue (event_id, endpoint_id, workspace_id, whatsapp_account_id,
                                 event_type, endpoint, payload, retry_count, max_retries,
                                 next_retry_at, last_error, last_status_code, status, delivered_at,
                                 claims, created_at, updated_at)
SELECT q.event_id, q.endpoint_id, q.ws_id, q.acct, q.event_type, q.url,
       convert_to(jsonb_build_object(
           'id', q.event_id, 'type', q.event_type, 'timestamp', pg_temp.ds_iso(q.created_at),
           'workspace_id', q.ws_id,
           'data', jsonb_build_object(
               'chat', jsonb_build_object(
                   'uuid', q.event_id, 'whatsapp_account_id', q.acct, 'contact_id', q.contact_id,
                   'group_id', NULL, 'type', 'inbound', 'chat_type', 'private',
                   'provider_type', 'webjs', 'message', q.body, 'message_type', 'text',
                   'message_status', 'delivered', 'is_read', false,
                   'created_at', pg_temp.ds_iso(q.created_at)),
               'contact', jsonb_build_object(
                   'id', q.contact_id, 'phone', pg_temp.ds_phone(q.contact_id),
                   'unread_messages', 1, 'latest_chat_created_at', pg_temp.ds_iso(q.created_at)),
               'group', NULL))::text, 'UTF8'),
       q.retries, 8,
       CASE q.status WHEN 'pending' THEN q.t_now + interval '30 days' + q.u * interval '1 day'
                     WHEN 'success' THEN q.created_at + interval '30 seconds'
                     ELSE q.created_at + interval '1 day' END,
       CASE WHEN q.status = 'failed' OR q.retries > 0
            THEN (ARRAY['HTTP 500', 'HTTP 502', 'timeout after 10000 ms',
                        'connection refused'])[1 + q.k % 4]
       END,
       CASE WHEN q.status = 'success' THEN 200
            WHEN q.status = 'failed' OR q.retries > 0 THEN (ARRAY[500, 502, NULL, NULL])[1 + q.k % 4]
       END,
       q.status,
       CASE WHEN q.status = 'success' THEN q.created_at + (50 + q.u * 2000) * interval '1 ms'
                                           + q.retries * interval '1 minute' END,
       CASE q.status WHEN 'pending' THEN q.retries ELSE q.retries + 1 END,
       q.created_at,
       CASE q.status WHEN 'pending' THEN q.created_at + q.retries * interval '10 minutes'
                     WHEN 'success' THEN q.created_at + (50 + q.u * 2000) * interval '1 ms'
                                         + q.retries * interval '1 minute'
                     ELSE q.created_at + interval '1 day' END
FROM (
    SELECT r.*,
           date_trunc('milliseconds', r.t_now - interval '25 days'
                                      * ((r.deliveries - r.k)::double precision / r.deliveries))
               AS created_at,
           CASE WHEN r.e = 1 OR r.u_type < 0.45 THEN 'message.created'
                WHEN r.u_type < 0.88 THEN 'message.status'
                WHEN r.u_type < 0.90 THEN 'message.reaction'
                WHEN r.u_type < 0.93 THEN 'chat.read'
                WHEN r.u_type < 0.97 THEN 'contact.updated'
                WHEN r.u_type < 0.98 THEN 'group.updated'
                ELSE 'session.status' END AS event_type,
           CASE WHEN r.u < 0.93 THEN 'success' WHEN r.u < 0.97 THEN 'failed' ELSE 'pending' END
               AS status,
           CASE WHEN r.u >= 0.93 AND r.u < 0.97 THEN 8
                WHEN r.u_retry < 0.9 THEN 0 ELSE 1 + floor((r.u_retry - 0.9) * 30)::integer END
               AS retries,
           (SELECT string_agg(pg_temp.ds_word(random(), random(), random()), ' ')
            FROM generate_series(1, 3 + (r.k % 9))) AS body
    FROM (
        SELECT e.id AS endpoint_id, e.ws_id, e.e, e.url, e.deliveries, s.k, p.t_now,
               e.a_lo + (s.k % e.n_acc) AS acct, gen_random_uuid() AS event_id,
               w.c_lo + floor(random() * w.n_contacts)::integer AS contact_id,
               random() AS u, random() AS u_type, random() AS u_retry
        FROM ds_ep e
        JOIN ds_ws w ON w.n = e.n
        CROSS JOIN ds_param p
        CROSS JOIN LATERAL generate_series(1, e.deliveries) s(k)
        OFFSET 0
    ) r
    OFFSET 0
) q;

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: webhooks

-- ---- indexes and foreign keys back, sequences past the ids taken ----------------------

ANALYZE contacts;
ANALYZE whatsapp_groups;
ANALYZE calls;
ANALYZE campaign_logs;
ANALYZE webhook_retry_queue;
SELECT pg_temp.ds_restore(NULL, ARRAY['unique', 'index', 'fkey']) \g /dev/null

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['workspaces', 'users', 'whatsapp_accounts', 'contacts',
                             'whatsapp_groups', 'chats', 'calls', 'campaigns',
                             'webhook_endpoints'] LOOP
        EXECUTE format('SELECT setval(%L, greatest((SELECT max(id) FROM %I), 1))',
                       pg_get_serial_sequence(t, 'id'), t);
    END LOOP;
END
$$;

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: indexes and foreign keys restored

-- ---- facts ----------------------------------------------------------------------------

-- Search terms are chosen by counting in the largest workspace, aiming at
-- a few hundred matches at scale 1 (the target shrinks with the scale,
-- never below 3): the closest count in log terms wins. Only the ten rare
-- words whose expected count is nearest are counted (rank r of the rare
-- tier is in about 8.6 words x 0.6 % x ln(1 + 1/r) / ln(121) of the
-- texts), each through the text index alone: ANDing it with the
-- workspace's index would read the workspace's whole range per word.
CREATE TEMP TABLE ds_largest AS
SELECT w.id, w.n_contacts, w.c_lo, w.n_groups, w.g_lo, w.a_lo, w.n_acc,
       (SELECT sum(n) FROM ds_conv c
        WHERE NOT c.by_conversation AND c.whatsapp_account_id BETWEEN w.a_lo AND w.a_lo + w.n_acc - 1)
           AS messages
FROM ds_ws w WHERE w.n = 1;

-- Its busiest conversation: the one with pages of messages and of calls.
CREATE TEMP TABLE ds_busy AS
SELECT c.contact_id, c.n
FROM ds_conv c, ds_largest l
WHERE c.by_conversation AND c.contact_id BETWEEN l.c_lo AND l.c_lo + l.n_contacts - 1
ORDER BY c.n DESC, c.contact_id
LIMIT 1;

CREATE TEMP TABLE ds_fact (name text PRIMARY KEY, value text NOT NULL);

INSERT INTO ds_fact
SELECT 'rare_word', word || ' ' || n
FROM (
    SELECT r.word, r.target,
           (SELECT count(*) FROM chats m
            WHERE m.workspace_id + 0 = r.id
              AND to_tsvector('simple', coalesce(m.metadata ->> 'body', ''))
                  @@ to_tsquery('simple', r.word)) AS n
    FROM (
        SELECT l.id, w.word, greatest(3.0, 300.0 * l.messages / 2000000) AS target
        FROM ds_largest l, unnest(pg_temp.ds_rare()) WITH ORDINALITY w(word, rank)
        ORDER BY abs(ln(l.messages * 0.86 * 8.6 * 0.006 * ln(1 + 1.0 / w.rank)
                        / ln(cardinality(pg_temp.ds_rare()) + 1))
                     - ln(greatest(3.0, 300.0 * l.messages / 2000000)))
        LIMIT 10
    ) r
) c
WHERE n > 0
ORDER BY abs(ln(n) - ln(target)), word
LIMIT 1;

INSERT INTO ds_fact
SELECT 'name_prefix', prefix || ' ' || n
FROM (
    SELECT lower(left(c.full_name, 3)) AS prefix, count(*) AS n,
           greatest(3.0, 300.0 * l.n_contacts / 200000) AS target
    FROM contacts c, ds_largest l
    WHERE c.workspace_id = l.id AND c.deleted_at IS NULL AND length(c.full_name) >= 3
    GROUP BY 1, 3
) c
ORDER BY abs(ln(n) - ln(target)), prefix
LIMIT 1;

INSERT INTO ds_fact
SELECT 'phone_prefix', prefix || ' ' || n
FROM (
    SELECT left(c.phone, len) AS prefix, count(*) AS n,
           greatest(3.0, 300.0 * l.n_contacts / 200000) AS target
    FROM contacts c, ds_largest l, generate_series(6, 10) len
    WHERE c.workspace_id = l.id AND c.deleted_at IS NULL
    GROUP BY 1, 3
) c
ORDER BY abs(ln(n) - ln(target)), length(prefix), prefix
LIMIT 1;

CREATE SCHEMA IF NOT EXISTS dataset;
DROP TABLE IF EXISTS dataset.facts;
CREATE TABLE dataset.facts (name text PRIMARY KEY, value text NOT NULL);
COMMENT ON TABLE dataset.facts IS
    'What db/dataset/generate.sql made: ids, ranges and search terms for the CRM read benchmark.';

INSERT INTO dataset.facts (name, value)
SELECT 'scale', scale::text FROM ds_param
UNION ALL SELECT 'generated_at', pg_temp.ds_iso(t_now) FROM ds_param
UNION ALL SELECT 'total_messages', n_msgs::text FROM ds_param
UNION ALL SELECT 'workspaces', n_ws::text FROM ds_param
UNION ALL SELECT 'largest_workspace_id', id::text FROM ds_largest
UNION ALL SELECT 'largest_workspace_messages', messages::text FROM ds_largest
UNION ALL SELECT 'largest_workspace_contacts', n_contacts::text FROM ds_largest
UNION ALL SELECT 'largest_workspace_contact_min', c_lo::text FROM ds_largest
UNION ALL SELECT 'largest_workspace_contact_max', (c_lo + n_contacts - 1)::text FROM ds_largest
UNION ALL SELECT 'largest_workspace_groups', n_groups::text FROM ds_largest
UNION ALL SELECT 'largest_workspace_group_min', g_lo::text FROM ds_largest
UNION ALL SELECT 'largest_workspace_group_max', (g_lo + n_groups - 1)::text FROM ds_largest
UNION ALL SELECT 'largest_workspace_account_ids', string_agg((a_lo + i)::text, ',' ORDER BY i)
          FROM ds_largest, generate_series(0, n_acc - 1) i
UNION ALL (SELECT 'busy_account_id', c.whatsapp_account_id::text
           FROM ds_conv c, ds_largest l
           WHERE NOT c.by_conversation AND c.whatsapp_account_id BETWEEN l.a_lo AND l.a_lo + l.n_acc - 1
           ORDER BY c.n DESC, c.whatsapp_account_id LIMIT 1)
UNION ALL SELECT 'busy_contact_id', contact_id::text FROM ds_busy
UNION ALL SELECT 'busy_contact_messages', n::text FROM ds_busy
UNION ALL SELECT 'busy_contact_calls', count(*)::text
          FROM calls k, ds_busy b, ds_largest l
          WHERE k.workspace_id = l.id AND k.contact_id = b.contact_id
UNION ALL (SELECT 'campaign_id', c.id::text FROM campaigns c, ds_largest l
           WHERE c.workspace_id = l.id AND c.status = 'completed' ORDER BY c.id LIMIT 1)
UNION ALL (SELECT 'campaign_logs', c.contacts_count::text FROM campaigns c, ds_largest l
           WHERE c.workspace_id = l.id AND c.status = 'completed' ORDER BY c.id LIMIT 1)
UNION ALL (SELECT 'endpoint_id', e.id::text FROM ds_ep e WHERE e.n = 1 AND e.e = 0)
UNION ALL (SELECT 'endpoint_deliveries', e.deliveries::text FROM ds_ep e WHERE e.n = 1 AND e.e = 0)
UNION ALL SELECT 'frequent_word', 'pesanan'
UNION ALL SELECT 'frequent_word_messages', count(*)::text
          FROM chats m, ds_largest l
          WHERE m.workspace_id = l.id
            AND to_tsvector('simple', coalesce(m.metadata ->> 'body', ''))
                @@ to_tsquery('simple', 'pesanan')
UNION ALL SELECT 'rare_word', split_part(value, ' ', 1) FROM ds_fact WHERE name = 'rare_word'
UNION ALL SELECT 'rare_word_messages', split_part(value, ' ', 2) FROM ds_fact WHERE name = 'rare_word'
UNION ALL (SELECT 'rare_token', substring(m.metadata ->> 'body' FROM 'INV-[0-9]{6}')
           FROM chats m, ds_largest l
           WHERE m.workspace_id = l.id AND m.metadata ->> 'body' LIKE '%INV-%'
           ORDER BY m.created_at DESC LIMIT 1)
UNION ALL SELECT 'name_prefix', split_part(value, ' ', 1) FROM ds_fact WHERE name = 'name_prefix'
UNION ALL SELECT 'name_prefix_contacts', split_part(value, ' ', 2)
          FROM ds_fact WHERE name = 'name_prefix'
UNION ALL SELECT 'phone_prefix', split_part(value, ' ', 1) FROM ds_fact WHERE name = 'phone_prefix'
UNION ALL SELECT 'phone_prefix_contacts', split_part(value, ' ', 2)
          FROM ds_fact WHERE name = 'phone_prefix';

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: facts written

COMMIT;

VACUUM ANALYZE;

SELECT to_char(extract(epoch FROM clock_timestamp()) - :ds_t0, 'FM99990.0') AS ds_t \gset
\echo generate.sql: :ds_t s: vacuumed and analyzed
